"""What the metaclass checks and compiles when a consumer class is created.

Every configuration mistake (a missing ``perm``, a bad ``path``, a handler named like a
Channels method, a hook taking arguments it cannot get) raises ImproperlyConfigured here,
at import time, instead of when the first client connects. ``configure`` also compiles each
``@handler``'s validator and the hooks, and stores them on the class for the pipeline.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from hypergen.liveview import NO_PERM_REQUIRED

from hypergen_consumers.connection.executor import check_timeout
from hypergen_consumers.connection.handler_rates import parse_rate
from hypergen_consumers.connection.targeting import check_broadcast
from hypergen_consumers.declaring.handlers import UNSET, HandlerSpec, compile_handler, handler_options
from hypergen_consumers.routing import routes as routing

__all__ = ["CONFIG_ATTRIBUTES", "configure", "snake_case", "unwrap_group_rule"]

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z\d])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

#: Keyword arguments of @consumer and class attributes a subclass may set.
CONFIG_ATTRIBUTES = (
    "perm",
    "any_perm",
    "path",
    "target_id",
    "base_template",
    "group_name",
    "broadcast",
    "user_plugins",
    "autourl",
    "timeout",
    "presence",
    "presence_target_id",
    "rate",
    "replay_frames",
    "replay_seconds",
    "groups",
)


def snake_case(name: str) -> str:
    """``ChatRoom`` -> ``chat_room``; ``message_chatgroup`` stays as it is."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def unwrap_group_rule(cls: type, rule: Any) -> Callable[[Any], str] | None:
    if isinstance(rule, staticmethod):
        rule = rule.__func__
    if rule is not None and not callable(rule):
        msg = (
            f"{cls.__name__}.group_name must be a callable taking the consumer and returning a "
            f"string (e.g. group_name = lambda consumer: 'lobby'), or None; got {rule!r}."
        )
        raise ImproperlyConfigured(msg)
    return cast("Callable[[Any], str] | None", rule)


def _reserved_names() -> frozenset[str]:
    return frozenset(name for klass in _base().__mro__ for name in vars(klass))


def configure(cls: Any, namespace: Mapping[str, Any], localns: dict[str, Any]) -> None:
    owner = cls.__name__
    if not cls._abstract:
        _check_perm(owner, "perm", cls.perm)
    cls.path = namespace.get("path") or f"{snake_case(cls.__name__)}/"
    cls._route = routing.compile_route(owner, cls.path)
    if cls.target_id is None and cls.base_template is not None:
        cls.target_id = getattr(cls.base_template, "target_id", None)
    check_broadcast(f"{owner}.broadcast", cls.broadcast)
    for attribute in ("any_perm", "autourl"):
        if not isinstance(getattr(cls, attribute), bool):
            msg = f"{owner}.{attribute} must be True or False, not {getattr(cls, attribute)!r}."
            raise ImproperlyConfigured(msg)
    cls.user_plugins = tuple(cls.user_plugins or ())
    cls.timeout = check_timeout(owner, cls.timeout)
    _check_target_id(f"{owner}.target_id", cls.target_id)
    _check_target_id(f"{owner}.presence_target_id", cls.presence_target_id)
    class_rate = parse_rate(f"{owner}.rate", cls.rate)
    _check_replay(owner, cls.replay_frames, cls.replay_seconds)

    localns = {**localns, **namespace}
    reserved = _reserved_names()
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
            _check_perm(f"{owner}.{name}", "perm", options.perm)
        if options.broadcast is not UNSET:
            check_broadcast(f"{owner}.{name}: @handler(broadcast=...)", options.broadcast)
        timeout = cls.timeout if options.timeout is UNSET else check_timeout(f"{owner}.{name}", options.timeout)
        if options.target_id is not UNSET:
            _check_target_id(f"{owner}.{name}: @handler(target_id=...)", options.target_id)
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
    if not handlers and not cls._abstract and not _has_custom_receive(cls):
        msg = (
            f"{owner} has no handlers: mark the methods clients may call with @handler, "
            f"e.g. @handler\\n    def send_message(self, request, text: str): ..."
        )
        raise ImproperlyConfigured(msg)
    cls._handlers = handlers
    cls._on_connect = _compile_hook(cls, "on_connect", localns)
    cls._on_resync = _compile_hook(cls, "on_resync", localns)
    cls._on_presence = _compile_hook(cls, "on_presence", localns)
    if cls._on_presence is not None and not cls._presence_enabled and not cls._abstract:
        msg = f"{owner} defines on_presence but does not track presence: set presence = True on the class."
        raise ImproperlyConfigured(msg)
    overridden = cls.on_disconnect is not _base().on_disconnect
    cls._on_disconnect = cls.on_disconnect if overridden else None


def _has_custom_receive(cls: type) -> bool:
    return any(getattr(cls, name) is not getattr(_base(), name) for name in ("receive", "receive_json"))


def _marked_names(cls: type) -> list[str]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if handler_options(value) is not None:
                names[name] = None
    return list(names)


def _compile_hook(cls: Any, name: str, localns: dict[str, Any]) -> HandlerSpec | None:
    func = getattr(cls, name)
    if func is getattr(_base(), name):
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


def _check_replay(owner: str, frames: Any, seconds: Any) -> None:
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
        msg = f"{owner}.replay_frames must be a whole number of frames, 0 to turn replay off; got {frames!r}."
        raise ImproperlyConfigured(msg)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        msg = f"{owner}.replay_seconds must be a number of seconds above 0 (e.g. 120); got {seconds!r}."
        raise ImproperlyConfigured(msg)


def _check_target_id(where: str, value: Any) -> None:
    if value is not None and not (isinstance(value, str) and value):
        msg = f'{where} must be an element id (a non-empty string such as "board") or None; got {value!r}.'
        raise ImproperlyConfigured(msg)


def _field(spec: HandlerSpec, param: str) -> str:
    return next(p.field for p in spec.params if p.name == param)


def _check_perm(owner: str, attribute: str, perm: Any) -> None:
    fix = (
        f'Set {attribute} = "app.codename" (or a list of them), as in @liveview(perm=...), '
        f"or {attribute} = NO_PERM_REQUIRED to allow everyone."
    )
    if perm is None or perm == "" or perm == ():
        msg = f"{owner} has no {attribute}. {fix}"
        raise ImproperlyConfigured(msg)
    if perm == NO_PERM_REQUIRED or isinstance(perm, str):
        return
    try:
        perms = list(perm)
    except TypeError:
        perms = [None]
    if not perms or not all(isinstance(p, str) and p for p in perms):
        msg = f"{owner}.{attribute} = {perm!r} is not a permission string or a list of them. {fix}"
        raise ImproperlyConfigured(msg)


def _base() -> Any:
    """``HypergenConsumer``, whose own methods mean "not overridden" (imported late: it uses this module)."""
    from hypergen_consumers.consumer import HypergenConsumer

    return HypergenConsumer
