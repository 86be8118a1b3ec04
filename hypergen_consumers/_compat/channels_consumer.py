"""Channels' ``AsyncConsumer.__call__`` and ``dispatch``, which a connection re-implements.

``lifecycle.LifecycleMixin.__call__`` is Channels' ``__call__`` with a channel-layer receive
that survives outages (it backs off and re-joins the connection's groups instead of ending
every connection) and a clean-up that leaves the groups however the connection ended.
``sending.SendingMixin.dispatch`` is Channels' ``dispatch`` that forwards a pre-encoded
frame without the per-message database clean-up hop, and makes that hop only while a
database connection is open (see ``db_cleanup``). Both are copies with changes, so they are
right only while Channels' own methods do no more than what was copied.

``sending.SendingMixin`` also hands a text frame to the server itself (``base_send``) instead
of through Channels' ``AsyncWebsocketConsumer.send`` and ``AsyncConsumer.send``, which only
build that message and pass it on (two awaits on every frame out).

Relies on: the names Channels' ``AsyncConsumer.__call__``, ``dispatch`` and the two ``send``
methods use (their code objects' ``co_names``, the same on Channels 4.2.0 to 4.3.x) being the
ones the copies were made from, so a Channels release that makes them do something new is
noticed; and on ``channels.utils.await_many_dispatch`` (which ``__call__`` uses; the copy waits
with ``connection/receivers`` instead) and ``channels.consumer.get_handler_name``. Without
that shape the connection runs Channels' own method instead: every message makes the
clean-up hop, and a channel-layer outage ends the connections, as with plain Channels; and
frames go out through Channels' ``send``, only slower.
"""

from __future__ import annotations

from typing import Any

import channels.consumer
import channels.generic.websocket
import channels.utils

__all__ = [
    "CALL_FALLBACK",
    "DISPATCH_FALLBACK",
    "SEND_FALLBACK",
    "apply_call",
    "apply_dispatch",
    "apply_send",
    "call_is_ours",
    "check_call",
    "check_dispatch",
    "check_send",
    "dispatch_is_ours",
    "get_handler_name",
    "send_is_direct",
]

CALL_FALLBACK = "Channels' own AsyncConsumer.__call__ (a channel-layer outage ends the connections)"
DISPATCH_FALLBACK = "Channels' own AsyncConsumer.dispatch (a database clean-up hop before every message)"
SEND_FALLBACK = "Channels' own AsyncWebsocketConsumer.send for every frame out"

#: What Channels' ``__call__`` uses (Channels 4.2.0 to 4.3.x): the copy in ``lifecycle`` handles each.
CALL_NAMES = frozenset(
    {
        "StopConsumer",
        "_sync",
        "async_to_sync",
        "await_many_dispatch",
        "base_send",
        "channel_layer",
        "channel_layer_alias",
        "channel_name",
        "channel_receive",
        "dispatch",
        "functools",
        "get_channel_layer",
        "new_channel",
        "partial",
        "receive",
        "scope",
    }
)
#: What Channels' ``dispatch`` uses: the copy in ``sending`` does each.
DISPATCH_NAMES = frozenset({"ValueError", "aclose_old_connections", "get_handler_name", "getattr"})

#: What Channels' ``AsyncWebsocketConsumer.send`` uses, and the message it builds for text.
SEND_NAMES = frozenset({"super", "send", "ValueError", "close"})
SEND_CONSTANTS = frozenset({"websocket.send", ("type", "text")})
#: What Channels' ``AsyncConsumer.send`` uses: it hands the message to the server.
BASE_SEND_NAMES = frozenset({"base_send"})

_call_active = False
_dispatch_active = False
_send_active = False


def _names_problem(method: Any, expected: frozenset[str], what: str) -> str | None:
    names = getattr(getattr(method, "__code__", None), "co_names", None)
    if names is None:
        return f"{what} is not a plain function any more (Channels changed it)"
    if frozenset(names) != expected:
        added, gone = sorted(set(names) - expected), sorted(expected - set(names))
        return f"{what} changed: it now also uses {added}" if added else f"{what} changed: it no longer uses {gone}"
    return None


def check_call(consumer_class: Any = None, utils: Any = channels.utils) -> str | None:
    """``None`` if Channels' ``AsyncConsumer.__call__`` is the one ``lifecycle`` copied."""
    consumer_class = channels.consumer.AsyncConsumer if consumer_class is None else consumer_class
    if not callable(getattr(utils, "await_many_dispatch", None)):
        return "channels.utils has no await_many_dispatch (Channels changed its internals)"
    return _names_problem(getattr(consumer_class, "__call__", None), CALL_NAMES, "AsyncConsumer.__call__")


def check_dispatch(consumer_class: Any = None, module: Any = channels.consumer) -> str | None:
    """``None`` if Channels' ``AsyncConsumer.dispatch`` is the one ``sending`` copied."""
    consumer_class = channels.consumer.AsyncConsumer if consumer_class is None else consumer_class
    if not callable(getattr(module, "get_handler_name", None)):
        return "channels.consumer has no get_handler_name (Channels changed its internals)"
    return _names_problem(getattr(consumer_class, "dispatch", None), DISPATCH_NAMES, "AsyncConsumer.dispatch")


def check_send(websocket_class: Any = None, consumer_class: Any = None) -> str | None:
    """``None`` if Channels' ``AsyncWebsocketConsumer.send`` only passes ``{"type":
    "websocket.send", "text": ...}`` to ``AsyncConsumer.send``, which only hands it to ``base_send``."""
    websocket_class = channels.generic.websocket.AsyncWebsocketConsumer if websocket_class is None else websocket_class
    consumer_class = channels.consumer.AsyncConsumer if consumer_class is None else consumer_class
    problem = _names_problem(getattr(websocket_class, "send", None), SEND_NAMES, "AsyncWebsocketConsumer.send")
    if problem is None and not SEND_CONSTANTS <= set(websocket_class.send.__code__.co_consts):
        problem = "AsyncWebsocketConsumer.send no longer sends {'type': 'websocket.send', 'text': ...}"
    return problem or _names_problem(getattr(consumer_class, "send", None), BASE_SEND_NAMES, "AsyncConsumer.send")


def apply_call() -> None:
    global _call_active
    _call_active = True


def apply_dispatch() -> None:
    global _dispatch_active
    _dispatch_active = True


def apply_send() -> None:
    global _send_active
    _send_active = True


def send_is_direct() -> bool:
    return _send_active


def call_is_ours() -> bool:
    return _call_active


def dispatch_is_ours() -> bool:
    return _dispatch_active


def get_handler_name(message: dict[str, Any]) -> str:
    """Channels' ``get_handler_name`` (only called once ``check_dispatch()`` found it)."""
    name: str = channels.consumer.get_handler_name(message)  # type: ignore[attr-defined,unused-ignore]
    return name
