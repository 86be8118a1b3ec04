"""Frame ids up: each client frame runs at most once per socket, its ack after its answer.

client.js numbers its frames per socket (``meta.id``, with ``?hypergen_socket=<random>`` in
the URL) and keeps each until the server acknowledges it with ``["hypergen.websocket.ack",
id]``; after a reconnect it re-sends the unacknowledged ones. The server claims each id
before running it (in memory, or in the layer's Redis, so every process agrees), records
what the run sent to this connection alone (``replies``), and answers a re-sent id with that
record instead of running it again. The ack is the last command of the run's last frame to
the sender (``SendingMixin.send_reply``): one frame down per client frame, not two.

This module decides and keeps the records; it sends nothing. The connection's client-frame
path (``connection.client_frames``) claims an id here, runs the frame or sends the recorded
answer this returns, then hands the run's reply back to be recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hypergen_consumers.conf import DEFAULT_HANDLER_TIMEOUT
from hypergen_consumers.connection.state import RUN_RECORDING, DeliveryState
from hypergen_consumers.delivery import replies
from hypergen_consumers.delivery.replay import window_settings
from hypergen_consumers.errors import INVALID_FRAME, Rejected
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import bounded_store

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import Member

__all__ = [
    "ACK_COMMAND",
    "MAX_FRAME_ID",
    "RECORD_DELAY",
    "Claim",
    "PendingRecord",
    "claim",
    "flush_record",
    "frame_id_of",
    "record",
    "recorded_reply",
    "recording",
]

logger = logging.getLogger("hypergen_consumers")

ACK_COMMAND = "hypergen.websocket.ack"
MAX_FRAME_ID = 2**53


def frame_id_of(part: DeliveryState, meta: dict[str, Any]) -> int | None:
    """The frame's id, or None: it has none, or the socket speaks no protocol (no socket id)."""
    frame_id = meta.get("id")
    if frame_id is None or part.socket_key is None:
        return None
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 < frame_id < MAX_FRAME_ID:
        raise Rejected(
            INVALID_FRAME,
            f"meta.id must be a positive integer below 2**53 (client.js numbers frames); got {frame_id!r}.",
        )
    return frame_id


@dataclass(frozen=True, slots=True)
class Claim:
    """A frame id, claimed: ``first`` means run it; otherwise ``record`` is what its run sent
    (or ``replies.PENDING`` while that run still goes)."""

    store: replies.ReplyStore
    key: str
    frame_id: int
    first: bool
    record: str
    seconds: float

    @property
    def ack(self) -> str:
        """The encoded ack command: the last command of what the sender gets for this frame."""
        return f'["{ACK_COMMAND}",{self.frame_id}]'


@contextmanager
def recording(part: DeliveryState) -> Iterator[list[str]]:
    """While a claimed frame runs: what the run sends to this connection alone is its reply.

    Marked in a context variable too, so only this run's sends count (not a presence render
    that sends meanwhile from a task of its own).
    """
    sent: list[str] = []
    part.recording = sent
    token = RUN_RECORDING.set(sent)
    try:
        yield sent
    finally:
        RUN_RECORDING.reset(token)
        part.recording = None


async def recorded_reply(part: DeliveryState, found: Claim, owner: str, timeout: float | None) -> list[str] | None:
    """A frame this socket ran: the frames its run sent to the sender (the last carries the
    ack), or None if they are no longer kept (the page resyncs).

    Still running (the first copy went to a connection that is now silent), it is waited
    for, up to the handler timeout.
    """
    record, key, store = found.record, found.key, found.store
    deadline, delay = time.monotonic() + (timeout or DEFAULT_HANDLER_TIMEOUT) + 1.0, 0.05
    while record == replies.PENDING and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
        record = await bounded_store(store, store.recorded(key, found.frame_id))
    if record.startswith("["):
        frames: list[str] = json.loads(record)
        return frames
    logger.info("%s: the reply to frame %d is not kept (%r); the page resyncs", owner, found.frame_id, record)
    return None


async def record(part: DeliveryState, found: Claim, sent: list[str], owner: str) -> None:
    """Keep what the run of ``found`` sent, for a re-sent copy of its id (see ``_record``)."""
    await _record(
        part, PendingRecord(found.store, found.key, found.frame_id, replies.encode_record(sent), found.seconds), owner
    )


#: How long a reply's record in Redis may wait to ride on the socket's next claim (see ``_record``).
RECORD_DELAY = 0.1


@dataclass
class PendingRecord:
    """A run's reply record, not yet written to its store."""

    store: replies.ReplyStore
    key: str
    frame_id: int
    record: str
    seconds: float


async def _record(part: DeliveryState, pending: PendingRecord, owner: str) -> None:
    """Write a run's reply record: at once in the process; in Redis, with the socket's next claim.

    Two Redis calls per client frame (claim before the run, record after) were most of what
    the delivery protocol cost a server on Redis (bench/scale.py, frame). A page that keeps
    talking sends its next frame right after the ack, so the record rides on that frame's
    claim (one Lua call does both); otherwise it is written after ``RECORD_DELAY`` seconds,
    or when the connection ends, whichever comes first. Meanwhile the id is claimed (a copy
    re-sent to another process waits for the record, as it waits for a run still going),
    so "at most once" is untouched; only an answer lost with a crashed process is delayed
    the same way an answer lost mid-run already is.
    """
    await flush_record(part, owner)  # At most one waits per connection.
    if getattr(pending.store, "in_process", False):
        await _write(pending, owner)
        return
    part.pending_record = pending
    part.record_timer = asyncio.get_running_loop().call_later(
        RECORD_DELAY, lambda: asyncio.ensure_future(flush_record(part, owner))
    )


async def flush_record(part: DeliveryState, owner: str) -> None:
    """Write the connection's waiting reply record now (its timer, a claim that failed, its end)."""
    pending = _take_pending(part)
    if pending is not None:
        await _write(pending, owner)


def _take_pending(part: DeliveryState) -> PendingRecord | None:
    pending, part.pending_record = part.pending_record, None
    timer, part.record_timer = part.record_timer, None
    if timer is not None:
        timer.cancel()
    return pending


async def _write(pending: PendingRecord, owner: str) -> None:
    """Write a reply record; if its store is down, keep trying in the background (once a
    second, for as long as the claim lives), or a copy of the id would find it pending for
    good and the page would be told to reload instead of getting its answer."""
    try:
        await bounded_store(
            pending.store, pending.store.record(pending.key, pending.frame_id, pending.record, pending.seconds)
        )
    except Exception as exc:
        logger.warning(
            "%s: could not record the reply to frame %d yet (%s); trying again",
            owner,
            pending.frame_id,
            exc,
        )
        task = asyncio.ensure_future(_keep_trying(pending))
        _retrying.add(task)
        task.add_done_callback(_retrying.discard)


_retrying: set[asyncio.Future[None]] = set()


async def _keep_trying(pending: PendingRecord) -> None:
    deadline = time.monotonic() + pending.seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        try:
            await bounded_store(
                pending.store, pending.store.record(pending.key, pending.frame_id, pending.record, pending.seconds)
            )
            return
        except Exception:
            continue


async def claim(part: DeliveryState, member: Member, frame_id: int, owner: str) -> Claim:
    """Claim ``frame_id`` for this socket: run it, or answer it from its record.

    In the layer's Redis when it answers, so every process agrees. While this process knows
    the layer is down (or the claim fails), in this process instead: a frame whose handler
    answers only its sender needs no layer, so it runs rather than failing (or waiting out a
    Redis that accepts but never answers). A re-sent copy of such an id, to this process, is
    answered from here. The limit: a page whose answer was lost during the outage and that
    reconnects to another process may have that frame run there once more.
    """
    _, seconds = window_settings(member.group)
    seconds = max(seconds, 1.0)
    backend = backend_for(member.channel_layer)
    shared, local = backend.replies, backend.fallback_replies
    key = part.socket_key
    assert key is not None  # frame_id_of gives no id to a socket without one.
    if shared is not local and not backend.health.is_down() and not local.claimed(key, frame_id):
        pending = _take_pending(part)
        earlier = None
        if pending is not None and pending.store is shared and pending.key == key:
            earlier = (pending.frame_id, pending.record)  # Written by this same call (see _record).
        elif pending is not None:
            await _write(pending, owner)
        try:
            first, found = await bounded_store(shared, shared.claim(key, frame_id, seconds, earlier))
            return Claim(shared, key, frame_id, first, found, seconds)
        except Exception as exc:
            backend.health.mark_failed()
            logger.info("%s: frame %d claimed in this process: %s", owner, frame_id, type(exc).__name__)
            if earlier is not None and pending is not None:
                await _write(pending, owner)  # Tried once more on its own (logged if Redis is still down).
    else:
        await flush_record(part, owner)
    first, found = await local.claim(key, frame_id, seconds)
    return Claim(local, key, frame_id, first, found, seconds)
