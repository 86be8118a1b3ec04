"""A connection's side of the delivery guarantees: positions down, frame ids up.

Down: every group frame carries its position in the group's stream (see ``replay.py``) and
is sent with a last command ``["hypergen.websocket.position", position]``. A reconnecting
page passes its last position in the URL (``?hypergen_position=...``); the connection sends
what it missed, in order, before live frames. A live frame whose ``prev`` is not the
connection's position means something was missed (an outage, a race between senders): the
connection catches up from the stream first, and skips what a catch-up already sent.

Up: client.js numbers its frames per socket (``meta.id``, with ``?hypergen_socket=<random>``
in the URL; a client without it gets plain frames, no positions) and re-sends what was not acknowledged (``["hypergen.websocket.ack", id]``) after
reconnecting. Each id runs at most once, in every process, and a re-sent id gets the reply
its first run sent to this connection alone (``replies``), then the ack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from hypergen.liveview import dumps

from . import replies
from .errors import INVALID_FRAME, LAYER_UNAVAILABLE, Rejected
from .executor import DEFAULT_HANDLER_TIMEOUT, handler_timeout
from .layers import FRAME_EVENT, bounded
from .replay import newer, remember_group, window_for, window_settings

__all__ = ["POSITION_COMMAND", "RESYNC_COMMAND", "ACK_COMMAND", "stamp", "start", "resume", "on_group_event", "run_once"]

logger = logging.getLogger("hypergen_consumers")

POSITION_COMMAND = "hypergen.websocket.position"
RESYNC_COMMAND = "hypergen.websocket.resync"
ACK_COMMAND = "hypergen.websocket.ack"
POSITION_PARAM = "hypergen_position"
SOCKET_PARAM = "hypergen_socket"
MAX_FRAME_ID = 2**53

_POSITION = re.compile(r"^(\d{1,15}-\d{1,10})?$")
_SOCKET_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass
class Tracking:
    """Where a connection is in its group's stream."""

    window: Any
    frames: int
    seconds: float
    position: str
    resumed: bool


# --- sending to a group ---------------------------------------------------------------


async def stamp(layer: Any, alias: str, group: str, message: dict[str, Any]) -> dict[str, Any]:
    """Store ``message`` in ``group``'s window (if it keeps one) and return it with its position.

    Called before the layer's ``group_send``: a frame is in the window before anyone can
    receive it, so a failure here is reported to the sender, never swallowed.
    """
    frames, seconds = window_settings(group)
    if frames <= 0:
        return message
    position, prev = await bounded(window_for(alias, layer).append(group, message, frames, seconds))
    return {**message, "group": group, "position": position, "prev": prev}


def with_position(text: str, position: str) -> str:
    """Append the position command to an encoded command list, without decoding it."""
    tail = f'["{POSITION_COMMAND}","{position}"]'  # Positions are digits and "-": nothing to escape.
    body = text.rstrip()
    return f"[{tail}]" if body == "[]" else f"{body[:-1]},{tail}]"


# --- connect and reconnect ------------------------------------------------------------


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


async def start(conn: Any) -> None:
    """Before joining the group: where does this connection start in the stream?

    A new socket starts at the group's last position (read before joining, so a frame sent
    in between is caught up, not lost; remembered per socket id, in case the position never
    reaches the page); a reconnecting page at the position it gives.
    """
    cls = type(conn)
    query = _query(conn.scope)
    key = query.get(SOCKET_PARAM, "")
    session = conn.scope.get("session")
    session_key = getattr(session, "session_key", None) or ""
    conn._socket_key = f"{cls.__name__}:{session_key}:{key}" if _SOCKET_ID.match(key) else None
    remember_group(conn.group, cls)
    frames, seconds = window_settings(conn.group)
    conn._replay = None
    if frames <= 0 or conn._socket_key is None:
        return  # Replay off, or a client that does not speak the protocol (not client.js).
    window = window_for(conn.channel_layer_alias, conn.channel_layer)
    given = query.get(POSITION_PARAM)
    resumed = given is not None and bool(_POSITION.match(given))
    position = given if resumed else await bounded(window.start(conn._socket_key, conn.group, seconds))
    conn._replay = Tracking(window, frames, seconds, position, resumed)  # type: ignore[arg-type]


async def resume(conn: Any) -> None:
    """After accepting: send a reconnecting page what it missed, or a new page its position."""
    tracking = conn._replay
    if tracking is None:
        return
    if tracking.resumed or tracking.position != await bounded(tracking.window.last(conn.group)):
        await catch_up(conn)
    else:
        await conn.send(text_data=dumps([[POSITION_COMMAND, tracking.position]]))


async def catch_up(conn: Any) -> None:
    """Send every frame after the connection's position, in order; resync past the window."""
    tracking = conn._replay
    if tracking is None:
        return
    try:
        entries, latest = await bounded(tracking.window.read_after(conn.group, tracking.position, tracking.seconds))
    except Exception as exc:
        logger.warning("%s: could not read the replay window (%s); retrying on the next frame", type(conn).__name__, exc)
        return
    if entries is None:
        await resync(conn)
        return
    for entry in entries:
        await deliver(conn, entry.position, entry.message)
    if not entries:
        # Nothing to send, but the page may hold a position this store never gave (a
        # restarted process, a clock that went back): move it to the store's, or live
        # frames would look older than it and be skipped.
        if latest != tracking.position:
            tracking.position = latest
            await conn.send(text_data=dumps([[POSITION_COMMAND, latest]]))


async def resync(conn: Any) -> None:
    """The page missed what cannot be sent again (away longer than the window, or a reply
    no longer kept): tell it (reload by default) or re-render."""
    tracking = conn._replay
    hook = type(conn)._on_resync
    if tracking is not None:
        tracking.position = await bounded(tracking.window.last(conn.group))
    await conn.send(text_data=dumps([[RESYNC_COMMAND, {"reload": hook is None}]]))
    if hook is not None:
        async with conn.rejections():
            await conn._run(hook, [], to_group=False)
    if tracking is not None:
        await conn.send(text_data=dumps([[POSITION_COMMAND, tracking.position]]))


# --- live frames ----------------------------------------------------------------------


async def on_group_event(conn: Any, event: dict[str, Any]) -> bool:
    """Deliver a positioned group frame in stream order; False if it is not one (send it as is)."""
    tracking = getattr(conn, "_replay", None)
    if tracking is None or "position" not in event or event.get("group") != conn.group:
        return False
    if event["prev"] == tracking.position:
        await deliver(conn, event["position"], event)
    elif newer(event["position"], tracking.position):
        await catch_up(conn)  # Something before it is missing: the stream has it.
    return True  # Otherwise a catch-up already sent it.


def _excluded(conn: Any, message: dict[str, Any]) -> bool:
    """``broadcast="others"``: the sender's connection, or the sender's page after a reconnect."""
    socket = message.get("exclude_socket")
    return message.get("exclude") == conn.channel_name or (socket is not None and socket == conn._socket_key)


async def deliver(conn: Any, position: str, message: dict[str, Any]) -> None:
    conn._replay.position = position
    if _excluded(conn, message):
        await conn.send(text_data=dumps([[POSITION_COMMAND, position]]))  # Skipped, but counted.
    elif message["type"] == FRAME_EVENT:
        await conn.send(text_data=with_position(message["text"], position))
    else:
        await conn._run_group_event(message)
        await conn.send(text_data=dumps([[POSITION_COMMAND, position]]))


# --- frame ids up -----------------------------------------------------------------------


async def run_once(conn: Any, meta: dict[str, Any], run: Callable[[], Awaitable[None]]) -> None:
    """Run a client frame; with an id, at most once per socket, its reply recorded, then the ack.

    A duplicate id (client.js re-sends what was not acknowledged) does not run: it gets the
    frames the first run sent to this connection alone, in order, then the ack (see
    ``replies``). The ack comes last, so a page that has it has the reply too.
    """
    frame_id = _frame_id(conn, meta)
    if frame_id is None:
        await run()
        return
    _, seconds = window_settings(conn.group)
    seconds = max(seconds, 1.0)
    store = replies.store_for(window_for(conn.channel_layer_alias, conn.channel_layer))
    try:
        first, record = await bounded(store.claim(conn._socket_key, frame_id, seconds))
    except Exception as exc:
        # Not acknowledged: client.js keeps the frame and re-sends it after its next reconnect.
        raise Rejected(
            LAYER_UNAVAILABLE, f"Could not record frame {frame_id} as run ({type(exc).__name__}); it was not run."
        ) from None
    if first:
        sent: list[str] = []
        conn._recording = sent
        try:
            async with conn.rejections():
                await run()
        finally:
            conn._recording = None
        try:
            await bounded(store.record(conn._socket_key, frame_id, replies.encode_record(sent), seconds))
        except Exception as exc:
            logger.warning("%s: could not record the reply to frame %d (%s)", type(conn).__name__, frame_id, exc)
    else:
        await _answer_again(conn, store, frame_id, record)
    await conn.send(text_data=dumps([[ACK_COMMAND, frame_id]]))


def _frame_id(conn: Any, meta: dict[str, Any]) -> int | None:
    frame_id = meta.get("id")
    if frame_id is None or conn._socket_key is None:
        return None
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 < frame_id < MAX_FRAME_ID:
        raise Rejected(INVALID_FRAME, f"meta.id must be a positive integer below 2**53 (client.js numbers frames); got {frame_id!r}.")
    return frame_id


async def _answer_again(conn: Any, store: replies.ReplyStore, frame_id: int, record: str) -> None:
    """A frame this socket ran: send its recorded reply again; resync if it is not kept.

    Still running (the first copy went to a connection that is now silent), it is waited
    for, up to the handler timeout.
    """
    timeout = handler_timeout(type(conn).timeout) or DEFAULT_HANDLER_TIMEOUT
    deadline, delay = time.monotonic() + timeout + 1.0, 0.05
    while record == replies.PENDING and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
        record = await bounded(store.recorded(conn._socket_key, frame_id))
    if record.startswith("["):
        for text in json.loads(record):
            await conn.send(text_data=text)
        return
    logger.info("%s: the reply to frame %d is not kept (%r); the page resyncs", type(conn).__name__, frame_id, record)
    await resync(conn)
