"""A consumer's class options, declared once: name, type, default, one-line doc and check.

Why one table: the options used to be listed in four places (the class's attributes,
``@consumer``'s keywords, the metaclass's checks, the docs) and the lists drifted apart
(``@consumer(replay_frames=0)`` once raised TypeError). Everything else is derived from
``OPTIONS``: the base class's defaults (the metaclass sets them on ``HypergenConsumer``),
the keywords ``@consumer`` takes, the checks ``configure`` runs in this order at class
creation, and the table in the API reference (a test keeps it equal to this one).

A check takes the new class and the value it has, raises ImproperlyConfigured naming the
class, the option and the fix, and returns what the class keeps. An option with a
``stored_as`` is a switch the class keeps elsewhere, because its name stays a method:
``ChatRoom.group_name(...)`` and ``ChatRoom.presence(...)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from hypergen.liveview import NO_PERM_REQUIRED

from hypergen_consumers.connection.executor import check_timeout
from hypergen_consumers.connection.handler_rates import parse_rate
from hypergen_consumers.connection.targeting import check_broadcast

__all__ = ["Option", "OPTIONS", "OPTION_NAMES", "check_perm", "check_target_id", "snake_case"]

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z\d])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class Option:
    """One class option (also a keyword argument of ``@consumer``)."""

    name: str
    type: str  # As the docs show it.
    default: Any
    doc: str
    check: Callable[[Any, Any], Any] | None = None
    stored_as: str | None = None


def snake_case(name: str) -> str:
    """``ChatRoom`` -> ``chat_room``; ``message_chatgroup`` stays as it is."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def check_perm(owner: str, attribute: str, perm: Any) -> None:
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


def check_target_id(where: str, value: Any) -> None:
    if value is not None and not (isinstance(value, str) and value):
        msg = f'{where} must be an element id (a non-empty string such as "board") or None; got {value!r}.'
        raise ImproperlyConfigured(msg)


def _perm(cls: Any, value: Any) -> Any:
    if not cls._abstract:  # An abstract base may leave perm to its subclasses.
        check_perm(cls.__name__, "perm", value)
    return value


def _flag(name: str) -> Callable[[Any, Any], Any]:
    def check(cls: Any, value: Any) -> Any:
        if not isinstance(value, bool):
            msg = f"{cls.__name__}.{name} must be True or False, not {value!r}."
            raise ImproperlyConfigured(msg)
        return value

    return check


def _path(cls: Any, value: Any) -> Any:
    # Not inherited: a subclass is mounted at its own name unless it sets a path itself.
    return vars(cls).get("path") or f"{snake_case(cls.__name__)}/"


def _target_id(cls: Any, value: Any) -> Any:
    if value is None and cls.base_template is not None:
        value = getattr(cls.base_template, "target_id", None)
    check_target_id(f"{cls.__name__}.target_id", value)
    return value


def _presence_target_id(cls: Any, value: Any) -> Any:
    check_target_id(f"{cls.__name__}.presence_target_id", value)
    return value


def _group_rule(cls: Any, rule: Any) -> Callable[[Any], str] | None:
    if isinstance(rule, staticmethod):
        rule = rule.__func__
    if rule is not None and not callable(rule):
        msg = (
            f"{cls.__name__}.group_name must be a callable taking the consumer and returning a "
            f"string (e.g. group_name = lambda consumer: 'lobby'), or None; got {rule!r}."
        )
        raise ImproperlyConfigured(msg)
    return cast("Callable[[Any], str] | None", rule)


def _replay_frames(cls: Any, frames: Any) -> Any:
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
        msg = f"{cls.__name__}.replay_frames must be a whole number of frames, 0 to turn replay off; got {frames!r}."
        raise ImproperlyConfigured(msg)
    return frames


def _replay_seconds(cls: Any, seconds: Any) -> Any:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        msg = f"{cls.__name__}.replay_seconds must be a number of seconds above 0 (e.g. 120); got {seconds!r}."
        raise ImproperlyConfigured(msg)
    return seconds


def _rate(cls: Any, value: Any) -> Any:
    parse_rate(f"{cls.__name__}.rate", value)
    return value


#: Every class option, in the order the metaclass checks them and the docs list them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "perm",
        "str | list[str]",
        None,
        "permission(s) needed to connect, as in @liveview (required; NO_PERM_REQUIRED lets everyone in)",
        _perm,
    ),
    Option("any_perm", "bool", False, "with several perms, any one of them suffices", _flag("any_perm")),
    Option("path", "str | None", None, "route relative to ws/<namespace>/; None: <snake_case_of_class_name>/", _path),
    Option("target_id", "str | None", None, "element id a handler's rendered HTML is morphed into", _target_id),
    Option("base_template", "hypergen template", None, "a hypergen base template; its target_id is the default one"),
    Option(
        "broadcast",
        'bool | "others"',
        True,
        'handler output to the group (True), the sender only (False), or the group but the sender ("others")',
        lambda cls, value: check_broadcast(f"{cls.__name__}.broadcast", value),
    ),
    Option(
        "group_name",
        "callable | None",
        None,
        "a function of the consumer returning its group's name; None: one group per URL kwargs",
        _group_rule,
        stored_as="_group_rule",
    ),
    Option("groups", "list[str] | None", None, "extra groups every connection joins, as in Channels"),
    Option(
        "presence",
        "bool",
        False,
        "track who is connected to the group (presence(), on_presence)",
        _flag("presence"),
        stored_as="_presence_enabled",
    ),
    Option(
        "presence_target_id",
        "str | None",
        None,
        "element id on_presence renders into; None: target_id",
        _presence_target_id,
    ),
    Option(
        "user_plugins",
        "sequence",
        (),
        "extra hypergen plugins used while handlers render",
        lambda cls, value: tuple(value or ()),
    ),
    Option("autourl", "bool", True, "False keeps the consumer out of autoconsumers()", _flag("autourl")),
    Option(
        "timeout",
        "float | None",
        None,
        "seconds a handler or hook may run; None: HYPERGEN_CONSUMERS_HANDLER_TIMEOUT",
        lambda cls, value: check_timeout(cls.__name__, value),
    ),
    Option(
        "rate", "str | None", None, 'calls per connection each handler allows ("5/s", "100/m"); None: no limit', _rate
    ),
    Option(
        "replay_frames", "int", 200, "frames of the group kept for pages that reconnect; 0: no replay", _replay_frames
    ),
    Option(
        "replay_seconds", "float", 120, "and for how long; older frames go even below replay_frames", _replay_seconds
    ),
)

#: The keyword arguments ``@consumer`` takes: the class options.
OPTION_NAMES: tuple[str, ...] = tuple(option.name for option in OPTIONS)
