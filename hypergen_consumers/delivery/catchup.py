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

This module keeps the connection's positions (its ``DeliveryState``) and decides; it sends
nothing and runs nothing. The connection's group-frame path (``connection.group_frames``)
asks it what a frame or a catch-up comes to, and sends or runs that.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from hypergen_consumers.delivery.replay import Entry, position_key, remember_group, window_settings
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
from hypergen_consumers.wire.outgoing import encode

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import DeliveryState, Member

__all__ = [
    "POSITION_COMMAND",
    "RESYNC_COMMAND",
    "CatchUp",
    "Step",
    "start",
    "resume",
    "catch_up",
    "replay_slot",
    "resync_frame",
    "resync_positions",
    "stream_of",
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


async def start(part: DeliveryState, member: Member) -> None:
    """Before joining the groups: where does this connection start in each stream?

    A new socket starts at each group's last position (read before joining, so a frame sent
    in between is caught up, not lost; remembered per socket id, in case the position never
    reaches the page); a reconnecting page at the positions it gives (see ``streams``).
    """
    cls = type(member)
    query = _query(member.scope)
    key = query.get(SOCKET_PARAM, "")
    session = member.scope.get("session")
    session_key = getattr(session, "session_key", None) or ""
    # Known in the stores by a keyed digest: the session key never reaches Redis (see keys).
    part.socket_key = socket_digest(cls.__name__, session_key, key) if _SOCKET_ID.match(key) else None
    remember_group(member.group, cls)
    frames, _ = window_settings(member.group)
    part.streams = []
    if frames <= 0 or part.socket_key is None:
        return  # Replay off, or a client that does not speak the protocol (not client.js).
    window = backend_for(member.channel_layer).window
    for index, group in enumerate(replayed_groups(member)):
        frames, seconds = window_settings(group)
        given = given_position(query, index)
        if given is None:  # A new page: where the stream is now (see above).
            position = await bounded_store(window, window.start(start_key(part.socket_key, index), group, seconds))
        else:
            position = given
        part.streams.append(Stream(window, frames, seconds, position, given is not None, group, index))


async def resume(part: DeliveryState) -> tuple[list[Stream], list[Stream]]:
    """After accepting: ``(streams the page is current in, streams it is behind in)``; the
    connection tells it the first's positions and catches it up in the second."""
    behind: list[Stream] = []
    current: list[Stream] = []
    for stream in part.streams:
        caught_up = not stream.resumed and stream.position == await bounded_store(
            stream.window, stream.window.last(stream.group)
        )
        (current if caught_up else behind).append(stream)
    return current, behind


@dataclass(slots=True)
class CatchUp:
    """What a catch-up comes to: positions to correct, frames to deliver in order, streams lost."""

    #: Streams with nothing to send whose position moved to the store's (tell the page).
    moved: list[Stream] = field(default_factory=list)
    #: Every missed frame, in order (merged by position across streams).
    missed: list[tuple[Stream, Entry]] = field(default_factory=list)
    #: How many of them are ``group_send`` runs (they render for this page: see ``replay_slot``).
    runs: int = 0
    #: Streams that cannot be caught up (past the window, or too many runs): they resync.
    lost: list[Stream] = field(default_factory=list)


async def catch_up(streams: list[Stream], owner: str) -> CatchUp:
    """Every frame after the positions of ``streams``; resync past a window.

    Each stream's frames go in their order, once each; frames of several streams are merged
    by position (one clock per store: exact in memory, Redis's clock with channels-redis).
    """
    plan = CatchUp()
    missed: list[tuple[tuple[int, int], int, Stream, Entry]] = []
    for stream in streams:
        try:
            reading = stream.window.read_after(stream.group, stream.position, stream.seconds)
            entries, latest = await bounded_store(stream.window, reading)
        except Exception as exc:
            logger.warning("%s: could not read the replay window (%s); retrying on the next frame", owner, exc)
            continue
        if entries is None:
            plan.lost.append(stream)
        elif entries:
            missed.extend((position_key(entry.position), stream.index, stream, entry) for entry in entries)
        elif latest != stream.position:
            # Nothing to send, but the page may hold a position this store never gave (a
            # restarted process, a clock that went back): move it to the store's, or live
            # frames would look older than it and be skipped.
            stream.position = latest
            plan.moved.append(stream)
    missed.sort(key=lambda item: (item[0], item[1]))
    runs = sum(entry.message["type"] != FRAME_EVENT for *_, entry in missed)
    if runs > REPLAY_RUNS_PER_CATCH_UP or (runs and _waiting[0] >= CATCH_UPS_WAITING_AT_MOST):
        # Too many handler runs to replay (each renders for this page), or too many pages
        # waiting to replay theirs already: their streams resync.
        heavy = {stream.index: stream for _, _, stream, entry in missed if entry.message["type"] != FRAME_EVENT}
        plan.lost += [stream for stream in heavy.values() if stream not in plan.lost]
        missed, runs = [item for item in missed if item[2].index not in heavy], 0
    plan.missed = [(stream, entry) for _, _, stream, entry in missed]
    plan.runs = runs
    return plan


@asynccontextmanager
async def replay_slot(runs: int) -> AsyncIterator[None]:
    """Around delivering a catch-up: one of the process's few slots when it replays runs.

    A catch-up that only forwards frames takes none. One that replays ``runs`` waits for a
    slot (``CATCH_UPS_RUNNING_AT_ONCE``), counted among the waiting meanwhile (past
    ``CATCH_UPS_WAITING_AT_MOST`` waiting, ``catch_up`` resyncs instead of queueing).
    """
    if not runs:
        yield
        return
    _waiting[0] += 1
    waiting = True
    try:
        async with _replaying_runs():
            _waiting[0] -= 1
            waiting = False
            yield
    finally:
        if waiting:
            _waiting[0] -= 1  # Cancelled while it still waited for a slot.


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


def _replaying_runs() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _run_slots.get(loop)
    if slots is None:
        _run_slots.clear()  # An old test loop's semaphore is no use.
        slots = _run_slots[loop] = asyncio.Semaphore(CATCH_UPS_RUNNING_AT_ONCE)
    return slots


async def resync_positions(streams: list[Stream]) -> None:
    """The page missed what cannot be sent again (away longer than a window, or a reply no
    longer kept): move ``streams`` to where they are now. The connection then sends
    ``resync_frame`` (reload, or re-render with ``on_resync``) and the new positions."""
    for stream in streams:
        stream.position = await bounded_store(stream.window, stream.window.last(stream.group))


def resync_frame(reload: bool) -> str:
    """``hypergen:websocket:resync`` for the page: reload it, or (with ``on_resync``) not."""
    return encode([[RESYNC_COMMAND, {"reload": reload}]])


# --- live frames ----------------------------------------------------------------------


def stream_of(part: DeliveryState, event: dict[str, Any]) -> Stream | None:
    """The stream a positioned group frame belongs to; None for a frame to send as it is."""
    if "position" not in event:
        return None
    group = event.get("group")
    for stream in part.streams:
        if stream.group == group:
            return stream
    return None


def _excluded(part: DeliveryState, channel_name: str, message: dict[str, Any]) -> bool:
    """``broadcast="others"``: the sender's connection, or the sender's page after a reconnect."""
    socket = message.get("exclude_socket")
    return message.get("exclude") == channel_name or (socket is not None and socket == part.socket_key)


@dataclass(slots=True)
class Step:
    """One frame of a stream, delivered: send ``text``; or, for a ``group_send`` (``run``), run
    it with ``tail`` (its position) appended to its reply, and send ``text`` only if nothing
    carried the tail."""

    text: str
    run: dict[str, Any] | None = None
    tail: str = ""


def deliver(part: DeliveryState, channel_name: str, position: str, message: dict[str, Any], stream: Stream) -> Step:
    """Move the page's position in ``stream`` to ``position``: what to send (or run) for it."""
    stream.position = position
    if _excluded(part, channel_name, message):
        return Step(positions_frame([stream]))  # Skipped, but counted.
    if message["type"] == FRAME_EVENT:
        return Step(with_position(message["text"], position, stream.index))
    # The run's output carries the position as its last command: one frame per member, not two.
    return Step(positions_frame([stream]), message, encode_position(position, stream.index))
