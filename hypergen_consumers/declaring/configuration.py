"""What the metaclass checks and compiles when a consumer class is created.

Every configuration mistake (a missing ``perm``, a bad ``path``, a handler named like a
Channels method, a hook taking arguments it cannot get) raises ImproperlyConfigured here,
at import time, instead of when the first client connects. The class options are checked
as their table (``options.OPTIONS``) says, in its order. ``configure`` also compiles each
``@handler``'s validator and the hooks, and stores them on the class for the pipeline.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers.connection.executor import check_timeout
from hypergen_consumers.connection.handler_rates import parse_rate
from hypergen_consumers.connection.targeting import check_broadcast
from hypergen_consumers.declaring.handlers import UNSET, HandlerSpec, compile_handler, handler_options
from hypergen_consumers.declaring.options import OPTIONS, check_perm, check_target_id
from hypergen_consumers.routing import routes as routing

__all__ = ["configure"]


def configure(
    cls: Any, root: Any, namespace: Mapping[str, Any], switches: Mapping[str, Any], localns: dict[str, Any]
) -> None:
    """Check ``cls``'s options (``switches``: the ones its namespace gave up) and compile its handlers.

    ``root`` is HypergenConsumer, whose own methods mean "not overridden".
    """
    owner = cls.__name__
    for option in OPTIONS:
        if option.stored_as is not None:
            if option.name in switches and option.check is not None:
                setattr(cls, option.stored_as, option.check(cls, switches[option.name]))
        elif option.check is not None:
            value = getattr(cls, option.name)
            kept = option.check(cls, value)
            if kept is not value:
                setattr(cls, option.name, kept)
    cls._route = routing.compile_route(owner, cls.path)
    class_rate = parse_rate(f"{owner}.rate", cls.rate)

    localns = {**localns, **namespace}
    reserved = frozenset(name for klass in root.__mro__ for name in vars(klass))
    handlers: dict[str, HandlerSpec] = {}
    for name in _marked_names(cls):
        func = inspect.getattr_static(cls, name)
        options = handler_options(func)
        if options is None:
            continue  # A subclass replaced the handler with a plain method.
        if name.startswith("_") or name in reserved:
            msg = (
                f"{owner}.{name}: {name!r} cannot be a handler name, because it is private or "
                f"already means something to Channels/HypergenConsumer. Rename the method."
            )
            raise ImproperlyConfigured(msg)
        if options.perm is not UNSET:
            check_perm(f"{owner}.{name}", "perm", options.perm)
        if options.broadcast is not UNSET:
            check_broadcast(f"{owner}.{name}: @handler(broadcast=...)", options.broadcast)
        timeout = cls.timeout if options.timeout is UNSET else check_timeout(f"{owner}.{name}", options.timeout)
        if options.target_id is not UNSET:
            check_target_id(f"{owner}.{name}: @handler(target_id=...)", options.target_id)
        rate = class_rate if options.rate is UNSET else parse_rate(f"{owner}.{name}: @handler(rate=...)", options.rate)
        handlers[name] = compile_handler(
            owner,
            name,
            func,
            cls._route.kwarg_names,
            perm=None if options.perm is UNSET else options.perm,
            any_perm=False if options.any_perm is UNSET else options.any_perm,
            broadcast=cls.broadcast if options.broadcast is UNSET else options.broadcast,
            timeout=timeout,
            localns=localns,
            target_id=cls.target_id if options.target_id is UNSET else options.target_id,
            rate=rate,
        )
    if not handlers and not cls._abstract and not _has_custom_receive(cls, root):
        msg = (
            f"{owner} has no handlers: mark the methods clients may call with @handler, "
            f"e.g. @handler\\n    def send_message(self, request, text: str): ..."
        )
        raise ImproperlyConfigured(msg)
    cls._handlers = handlers
    cls._on_connect = _compile_hook(cls, root, "on_connect", localns)
    cls._on_resync = _compile_hook(cls, root, "on_resync", localns)
    cls._on_presence = _compile_hook(cls, root, "on_presence", localns)
    if cls._on_presence is not None and not cls._presence_enabled and not cls._abstract:
        msg = f"{owner} defines on_presence but does not track presence: set presence = True on the class."
        raise ImproperlyConfigured(msg)
    cls._on_disconnect = cls.on_disconnect if cls.on_disconnect is not root.on_disconnect else None
    cls._presence_meta = cls.presence_meta if cls.presence_meta is not root.presence_meta else None


def _has_custom_receive(cls: type, root: type) -> bool:
    return any(getattr(cls, name) is not getattr(root, name) for name in ("receive", "receive_json"))


def _marked_names(cls: type) -> list[str]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if handler_options(value) is not None:
                names[name] = None
    return list(names)


def _compile_hook(cls: Any, root: type, name: str, localns: dict[str, Any]) -> HandlerSpec | None:
    func = getattr(cls, name)
    if func is getattr(root, name):
        return None
    presence_target = cls.presence_target_id if name == "on_presence" else None
    spec = compile_handler(
        cls.__name__,
        name,
        func,
        cls._route.kwarg_names,
        perm=None,
        any_perm=False,
        broadcast=False,
        timeout=cls.timeout,
        localns=localns,
        target_id=cls.target_id if presence_target is None else presence_target,
    )
    if spec.client_params and name == "on_connect":
        missing = [p for p in spec.client_params if spec.model.model_fields[_field(spec, p)].is_required()]
        if missing:
            msg = (
                f"{cls.__name__}.on_connect(self, request, ...) takes {missing}, which are not URL kwargs "
                f"of {cls.path!r}. Only URL kwargs are passed to on_connect; give them defaults or remove them."
            )
            raise ImproperlyConfigured(msg)
    return spec


def _field(spec: HandlerSpec, param: str) -> str:
    return next(p.field for p in spec.params if p.name == param)
