"""Check a backend push in the caller: the handler's name, and its args with its model.

A push runs its handler on every connection of a group, far from the code that sent it;
a typo or a bad argument there only reaches the pages, as ``unknown_handler`` or
``validation_error``. ``ChatRoom.group_send(...)`` checks both here, before anything is
sent, and the module-level ``group_send`` checks the name when it knows the group's class
(``group_owners``). The args follow the client's rule: a class consumer's first arg names
the handler; a ``@consumer`` function is its own one handler and takes them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hypergen_consumers.declaring.handlers import HandlerSpec

__all__ = ["check_handler_name", "check_push"]


def check_handler_name(
    cls: Any, args: Sequence[Any], who: str, *, after_group: bool = True
) -> tuple[HandlerSpec, list[Any]]:
    """The handler ``args`` reach on ``cls`` and the args it gets; ValueError naming the handlers.

    ``after_group``: the call's first argument is the group (``group_send(group, name, ...)``),
    not the handler's name (``ChatRoom.group_send(name, ...)``); the message shows the right form.
    """
    if cls._function_handler is not None:
        return cls._handlers[cls._function_handler], list(args)
    name = args[0] if args else None
    spec = cls._handlers.get(name) if isinstance(name, str) else None
    if spec is None:
        handlers = sorted(cls._handlers)
        example = handlers[0] if handlers else "handler_name"
        form = f"{who}(group, {example!r}, ...)" if after_group else f"{who}({example!r}, ...)"
        where = "The argument after the group" if after_group else "The first argument"
        msg = f"{who}: {cls.__name__} has no handler {name!r}; its handlers are {handlers}. {where} names the handler: {form}."
        raise ValueError(msg)
    return spec, list(args[1:])


def check_push(cls: Any, args: Sequence[Any], url_kwargs: Mapping[str, Any], who: str) -> None:
    """Raise ValueError (unknown handler) or pydantic's ValidationError (bad args) for a push.

    URL-kwarg parameters the lookup did not give (a custom ``group_name`` rule that ignores
    some of them) are left to each connection, which fills them from its own URL.
    """
    spec, client_args = check_handler_name(cls, args, who, after_group=False)
    data: dict[str, Any] = dict(zip(spec.client_params, client_args))
    given_url_params = [name for name in spec.url_params if name in url_kwargs]
    data.update({name: url_kwargs[name] for name in given_url_params})
    surplus = client_args[len(spec.client_params) :]
    try:
        spec.model.model_validate(data)
    except ValidationError as exc:
        left_to_connections = set(spec.url_params) - set(given_url_params)
        if any(not (error["type"] == "missing" and error["loc"][0] in left_to_connections) for error in exc.errors()):
            raise
    if surplus:
        raise ValidationError.from_exception_data(
            spec.model.__name__,
            [
                {"type": "unexpected_positional_argument", "loc": (len(spec.client_params) + index,), "input": value}
                for index, value in enumerate(surplus)
            ],
        )
