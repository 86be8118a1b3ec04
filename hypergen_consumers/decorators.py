"""``@consumer``: one function becomes a one-handler HypergenConsumer subclass.

Sugar over the class API that adds nothing of its own: the function already has a
method's shape, ``f(consumer, request, ...)``, so it becomes the class's only handler.
The decorated name *is* the class, so ``.reverse()``, ``.group_name()`` and
``.as_asgi()`` work on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, overload

from hypergen_consumers.consumer import HypergenConsumer, HypergenConsumerMeta
from hypergen_consumers.declaring.handlers import handler
from hypergen_consumers.declaring.options import OPTION_NAMES

__all__ = ["consumer"]

# @action keyword arguments that have no meaning on a websocket, with the reason.
_ACTION_ONLY = {
    "re_path": "regex routes are not supported; use path= with Django path converters",
    "login_url": "a websocket cannot redirect to a login page; the handshake is refused with close code 4403",
    "raise_exception": "a refused websocket handshake always closes with code 4403",
    "redirect_field_name": "a websocket cannot redirect to a login page",
    "partial": "partial page loading is for HTTP liveviews",
    "base_view": "there is no page view to re-render on a websocket",
    "appstate": "per-connection state lives on the consumer instance (consumer.my_state = ...)",
}


@overload
def consumer(func: Callable[..., Any], /) -> type[HypergenConsumer]: ...


@overload
def consumer(**options: Any) -> Callable[[Callable[..., Any]], type[HypergenConsumer]]: ...


def consumer(func: Any = None, /, **options: Any) -> Any:
    """Turn ``f(consumer, request, ...)`` into a HypergenConsumer with ``f`` as its one handler.

    Takes the class options as keyword arguments (``perm`` is required; every option is in
    the API reference's table, which is ``declaring.options.OPTIONS``).
    """
    for name in options:
        if name in _ACTION_ONLY:
            msg = f"@consumer does not take {name}=: {_ACTION_ONLY[name]}."
            raise TypeError(msg)
        if name not in OPTION_NAMES:
            msg = f"@consumer got an unexpected keyword argument {name!r}; it takes {', '.join(OPTION_NAMES)}."
            raise TypeError(msg)
    localns = sys._getframe(1).f_locals

    def wrap(function: Callable[..., Any]) -> type[HypergenConsumer]:
        namespace = {
            **options,
            function.__name__: handler(function),
            "_function_handler": function.__name__,
            "__module__": function.__module__,
            "__qualname__": function.__qualname__,
            "__doc__": function.__doc__,
            # Python 3.13's inspect.getsource(cls) reads this line (and no longer follows
            # __wrapped__ from a class): the class's source is the function's.
            "__firstlineno__": function.__code__.co_firstlineno,
        }
        cls = HypergenConsumerMeta(function.__name__, (HypergenConsumer,), namespace, localns=localns)
        cls.__wrapped__ = function  # type: ignore[attr-defined]  # inspect.getsource(cls) and inspect.unwrap(cls) find the function.
        return cls  # type: ignore[return-value]

    if func is not None:
        if options:
            msg = "Use @consumer(perm=..., ...) with keyword arguments only."
            raise TypeError(msg)
        return wrap(func)
    return wrap
