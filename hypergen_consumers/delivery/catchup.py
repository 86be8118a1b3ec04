"""A connection's side of the delivery guarantees, down: positions, catch-up, resync.

Down: every group frame carries its position in the group's stream (see ``replay.py``) and
is sent with a last command ``["hypergen.websocket.position", position, k]``, ``k`` the
stream's index among the connection's replayed groups (see ``streams.py``; none for its own
group). A reconnecting page passes its last positions in the URL (``?hypergen_position=...``
and ``hypergen_position_<k>=...``); the connection sends what it missed, in order, before
live frames. A live frame whose ``prev`` is not the stream's position means something was
missed (an outage, a race between senders): the connection catches up from the stream
first, and skips what a catch-up already sent.

A page is known by its socket id (``?hypergen_socket=<random>``, which client.js adds); a
client without one gets plain frames, no positions. Frame ids up (run once, acks) are in
``frame_ids``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from hypergen_consumers.connection.heartbeat import keepalive
from hypergen_consumers.delivery.replay import Entry, newer, position_key, remember_group, window_settings
from hypergen_consumers.delivery.streams import (
    POSITION_COMMAND,
    Stream,
    encode_position,
    given_position,
    positions_frame,
    replayed_groups,
    start_key,
    with_position,
)
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import FRAME_EVENT, bounded_store
from hypergen_consumers.layers.keys import socket_digest
from hypergen_consumers.observability import observe
from hypergen_consumers.wire.outgoing import encode

__all__ = [
    "POSITION_COMMAND",
    "RESYNC_COMMAND",
    "start",
    "resume",
    "catch_up",
    "resync",
    "on_group_event",
    "deliver",
]

logger = logging.getLogger("hypergen_consumers")

RESYNC_COMMAND = "hypergen.websocket.resync"
SOCKET_PARAM = "hypergen_socket"

_SOCKET_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


# --- connect and reconnect ------------------------------------------------------------


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


async def start(conn: Any) -> None:
    """Before joining the groups: where does this connection start in each stream?

    A new socket starts at each group's last position (read before joining, so a frame sent
    in between is caught up, not lost; remembered per socket id, in case the position never
    reaches the page); a reconnecting page at the positions it gives (see ``streams``).
    """
    cls = type(conn)
    query = _query(conn.scope)
    key = query.get(SOCKET_PARAM, "")
    session = conn.scope.get("session")
    session_key = getattr(session, "session_key", None) or ""
    # Known in the stores by a keyed digest: the session key never reaches Redis (see keys).
    conn._socket_key = socket_digest(cls.__name__, session_key, key) if _SOCKET_ID.match(key) else None
    remember_group(conn.group, cls)
    frames, _ = window_settings(conn.group)
    conn._replay, conn._streams = None, []
    if frames <= 0 or conn._socket_key is None:
        return  # Replay off, or a client that does not speak the protocol (not client.js).
    window = backend_for(conn.channel_layer).window
    for index, group in enumerate(replayed_groups(conn)):
        frames, seconds = window_settings(group)
        given = given_position(query, index)
        if given is None:  # A new page: where the stream is now (see above).
            position = await bounded_store(window, window.start(start_key(conn._socket_key, index), group, seconds))
        else:
            position = given
        conn._streams.append(Stream(window, frames, seconds, position, given is not None, group, index))
    conn._replay = conn._streams[0]


async def resume(conn: Any) -> None:
    """After accepting: send a reconnecting page what it missed, or a new page its positions."""
    behind: list[Stream] = []
    current: list[Stream] = []
    for stream in streams_of(conn):
        caught_up = not stream.resumed and stream.position == await bounded_store(
            stream.window, stream.window.last(stream.group)
        )
        (current if caught_up else behind).append(stream)
    if current:
        await conn.send(text_data=positions_frame(current))
    if behind:
        await catch_up(conn, behind)


async def catch_up(conn: Any, streams: list[Stream] | None = None) -> None:
    """Send every frame after the connection's positions; resync past a window.

    Each stream's frames go in their order, once each; frames of several streams are merged
    by position (one clock per store: exact in memory, Redis's clock with channels-redis).
    """
    missed: list[tuple[tuple[int, int], int, Stream, Entry]] = []
    lost: list[Stream] = []
    for stream in streams_of(conn) if streams is None else streams:
        try:
            reading = stream.window.read_after(stream.group, stream.position, stream.seconds)
            entries, latest = await bounded_store(stream.window, reading)
        except Exception as exc:
            logger.warning(
                "%s: could not read the replay window (%s); retrying on the next frame", type(conn).__name__, exc
            )
            continue
        if entries is None:
            lost.append(stream)
        elif entries:
            missed.extend((position_key(entry.position), stream.index, stream, entry) for entry in entries)
        elif latest != stream.position:
            # Nothing to send, but the page may hold a position this store never gave (a
            # restarted process, a clock that went back): move it to the store's, or live
            # frames would look older than it and be skipped.
            stream.position = latest
            await conn.send(text_data=positions_frame([stream]))
    missed.sort(key=lambda item: (item[0], item[1]))
    runs = sum(entry.message["type"] != FRAME_EVENT for *_, entry in missed)
    if runs > REPLAY_RUNS_PER_CATCH_UP or (runs and _waiting[0] >= CATCH_UPS_WAITING_AT_MOST):
        # Too many handler runs to replay (each renders for this page), or too many pages
        # waiting to replay theirs already: their streams resync.
        heavy = {stream.index: stream for _, _, stream, entry in missed if entry.message["type"] != FRAME_EVENT}
        lost += [stream for stream in heavy.values() if stream not in lost]
        missed, runs = [item for item in missed if item[2].index not in heavy], 0
    # A page waiting for a slot is silent (its heartbeat waits behind this catch-up): keep it
    # alive, or client.js gives the socket up and queues again at the back.
    beating = keepalive(conn) if runs else None
    waiting = bool(runs)
    _waiting[0] += waiting
    try:
        async with _replaying_runs() if runs else _nothing():
            _waiting[0] -= waiting
            waiting = False
            for _, _, stream, entry in missed:
                if _client_gone(conn):
                    return  # Nobody to run the rest for (its disconnect waits behind this catch-up).
                if newer(entry.position, stream.position):
                    await deliver(conn, entry.position, entry.message, stream)
    finally:
        _waiting[0] -= waiting  # Cancelled while it still waited for a slot.
        if beating is not None:
            beating.stop()
    if lost:
        await resync(conn, lost)


#: A page that missed more ``group_send`` handler runs than this resyncs instead of having
#: each run again for it. Replaying runs renders per page: measured before this bound, a page
#: 200 runs behind cost 420 ms of CPU to resume (a handshake costs 9 ms), and 200 such pages
#: resuming at once (after a deploy) took 60 s of CPU, a bystander's p50 1.8 ms -> 224 ms.
REPLAY_RUNS_PER_CATCH_UP = 25
#: Catch-ups that run handlers at once per process; the others queue, so connections that are
#: not catching up keep being served between their runs.
CATCH_UPS_RUNNING_AT_ONCE = 2
_run_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
#: Catch-ups that would run handlers and wait for a slot, at most, per process: past it a
#: resuming page resyncs, so a crowd of handshakes (a hostile client's, or a deploy's) cannot
#: queue up without bound in front of the pages behind them.
CATCH_UPS_WAITING_AT_MOST = 50
_waiting = [0]


def _client_gone(conn: Any) -> bool:
    """Whether the client's TCP connection is gone (daphne; see ``slow_readers``).

    A connection handles one message at a time, so the disconnect of a page that left waits
    behind its catch-up: without this, its replayed handlers all ran for nobody, holding one
    of the process's catch-up slots.
    """
    buffer = conn._send_buffer
    return buffer is not None and buffer.closed()


def _replaying_runs() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _run_slots.get(loop)
    if slots is None:
        _run_slots.clear()  # An old test loop's semaphore is no use.
        slots = _run_slots[loop] = asyncio.Semaphore(CATCH_UPS_RUNNING_AT_ONCE)
    return slots


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def resync(conn: Any, streams: list[Stream] | None = None) -> None:
    """The page missed what cannot be sent again (away longer than a window, or a reply
    no longer kept): tell it (reload by default) or re-render. ``streams``: all of them."""
    streams = streams_of(conn) if streams is None else streams
    hook = type(conn)._on_resync
    observe.resync(conn)
    for stream in streams:
        stream.position = await bounded_store(stream.window, stream.window.last(stream.group))
    await conn.send(text_data=encode([[RESYNC_COMMAND, {"reload": hook is None}]]))
    if hook is not None:
        async with conn.rejections():
            await conn._run(hook, [], to_group=False)
    if streams:
        await conn.send(text_data=positions_frame(streams))


# --- live frames ----------------------------------------------------------------------


def streams_of(conn: Any) -> list[Stream]:
    """The streams a connection is replayed from (none without replay, or before it started)."""
    streams: list[Stream] = getattr(conn, "_streams", [])
    return streams


def _stream_of(conn: Any, event: dict[str, Any]) -> Stream | None:
    group = event.get("group")
    for stream in streams_of(conn):
        if stream.group == group:
            return stream
    return None


async def on_group_event(conn: Any, event: dict[str, Any]) -> bool:
    """Deliver a positioned group frame in stream order; False if it is not one (send it as is)."""
    stream = _stream_of(conn, event) if "position" in event else None
    if stream is None:
        return False
    if event["prev"] == stream.position:
        await deliver(conn, event["position"], event, stream)
    elif newer(event["position"], stream.position):
        await catch_up(conn, [stream])  # Something before it is missing: the stream has it.
    return True  # Otherwise a catch-up already sent it.


def _excluded(conn: Any, message: dict[str, Any]) -> bool:
    """``broadcast="others"``: the sender's connection, or the sender's page after a reconnect."""
    socket = message.get("exclude_socket")
    return message.get("exclude") == conn.channel_name or (socket is not None and socket == conn._socket_key)


async def deliver(conn: Any, position: str, message: dict[str, Any], stream: Stream | None = None) -> None:
    """Send one frame of ``stream`` (the own group's by default) and move the page's position there."""
    if stream is None:
        stream = streams_of(conn)[0]
    stream.position = position
    if _excluded(conn, message):
        await conn.send(text_data=positions_frame([stream]))  # Skipped, but counted.
    elif message["type"] == FRAME_EVENT:
        await conn.send(text_data=with_position(message["text"], position, stream.index))
    else:
        # The run's output carries the position as its last command: one frame per member, not two.
        tail = encode_position(position, stream.index)
        if not await conn._run_group_event(message, tail=tail):
            await conn.send(text_data=positions_frame([stream]))  # It sent nothing to carry it.
