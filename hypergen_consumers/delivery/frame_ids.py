"""Frame ids up: each client frame runs at most once per socket, its ack after its answer.

client.js numbers its frames per socket (``meta.id``, with ``?hypergen_socket=<random>`` in
the URL) and keeps each until the server acknowledges it with ``["hypergen.websocket.ack",
id]``; after a reconnect it re-sends the unacknowledged ones. The server claims each id
before running it (in memory, or in the layer's Redis, so every process agrees), records
what the run sent to this connection alone (``replies``), and answers a re-sent id with that
record instead of running it again. The ack is the last command of the run's last frame to
the sender (``SendingMixin.send_reply``): one frame down per client frame, not two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hypergen_consumers.conf import DEFAULT_HANDLER_TIMEOUT
from hypergen_consumers.connection.executor import handler_timeout
from hypergen_consumers.connection.state import RUN_RECORDING
from hypergen_consumers.delivery import replies
from hypergen_consumers.delivery.catchup import resync
from hypergen_consumers.delivery.replay import window_settings
from hypergen_consumers.errors import INVALID_FRAME, Rejected
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import bounded_store

__all__ = ["ACK_COMMAND", "MAX_FRAME_ID", "RECORD_DELAY", "PendingRecord", "flush_record", "run_once"]

logger = logging.getLogger("hypergen_consumers")

ACK_COMMAND = "hypergen.websocket.ack"
MAX_FRAME_ID = 2**53


async def run_once(conn: Any, meta: dict[str, Any], run: Callable[[], Awaitable[None]]) -> None:
    """Run a client frame; with an id, at most once per socket, its reply recorded, then the ack.

    A duplicate id (client.js re-sends what was not acknowledged) does not run: it gets the
    frames the first run sent to this connection alone, in order, then the ack (see
    ``replies``). The ack comes last, so a page that has it has the reply too: it is the last
    command of the run's last frame to the sender (its reply or error frame), or a frame of
    its own when the run sent the sender nothing.
    """
    frame_id = _frame_id(conn, meta)
    if frame_id is None:
        await run()
        return
    _, seconds = window_settings(conn.group)
    seconds = max(seconds, 1.0)
    store, first, record = await _claim(conn, frame_id, seconds)
    ack = f'["{ACK_COMMAND}",{frame_id}]'
    if not first:
        await _answer_again(conn, store, frame_id, record)
        await conn.send_held_reply(ack)
        return
    sent: list[str] = []
    conn._recording = sent
    token = RUN_RECORDING.set(sent)  # Only this run's sends are its reply (not a presence render's).
    try:
        async with conn.rejections():
            try:
                await run()
            except Rejected as exc:
                if exc.extra.get("retry"):
                    exc.extra["id"] = frame_id  # Not run: client.js sends this frame again (see pipeline).
                raise
    finally:
        RUN_RECORDING.reset(token)
        conn._recording = None
    # The reply carries the ack (see SendingMixin.send_reply). Sent before it is recorded: a
    # copy of the id re-sent meanwhile finds the claim pending and waits for the record.
    # Recorded even when that send fails (uvicorn raises once the client is gone): the run
    # is over, and its page, reconnecting, re-sends the id for exactly this answer.
    try:
        await conn.send_held_reply(ack)
    finally:
        await _record(conn, PendingRecord(store, conn._socket_key, frame_id, replies.encode_record(sent), seconds))


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


async def _record(conn: Any, pending: PendingRecord) -> None:
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
    await flush_record(conn)  # At most one waits per connection.
    if getattr(pending.store, "in_process", False):
        await _write(conn, pending)
        return
    conn._pending_record = pending
    conn._record_timer = asyncio.get_running_loop().call_later(
        RECORD_DELAY, lambda: asyncio.ensure_future(flush_record(conn))
    )


async def flush_record(conn: Any) -> None:
    """Write the connection's waiting reply record now (its timer, a claim that failed, its end)."""
    pending = _take_pending(conn)
    if pending is not None:
        await _write(conn, pending)


def _take_pending(conn: Any) -> PendingRecord | None:
    pending: PendingRecord | None = conn._pending_record
    conn._pending_record = None
    timer, conn._record_timer = conn._record_timer, None
    if timer is not None:
        timer.cancel()
    return pending


async def _write(conn: Any, pending: PendingRecord) -> None:
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
            type(conn).__name__,
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


async def _claim(conn: Any, frame_id: int, seconds: float) -> tuple[replies.ReplyStore, bool, str]:
    """Claim ``frame_id`` for this socket: ``(the store that holds the claim, run it?, its record)``.

    In the layer's Redis when it answers, so every process agrees. While this process knows
    the layer is down (or the claim fails), in this process instead: a frame whose handler
    answers only its sender needs no layer, so it runs rather than failing (or waiting out a
    Redis that accepts but never answers). A re-sent copy of such an id, to this process, is
    answered from here. The limit: a page whose answer was lost during the outage and that
    reconnects to another process may have that frame run there once more.
    """
    backend = backend_for(conn.channel_layer)
    shared, local = backend.replies, backend.fallback_replies
    key = conn._socket_key
    if shared is not local and not backend.health.is_down() and not local.claimed(key, frame_id):
        pending = _take_pending(conn)
        earlier = None
        if pending is not None and pending.store is shared and pending.key == key:
            earlier = (pending.frame_id, pending.record)  # Written by this same call (see _record).
        elif pending is not None:
            await _write(conn, pending)
        try:
            first, record = await bounded_store(shared, shared.claim(key, frame_id, seconds, earlier))
            return shared, first, record
        except Exception as exc:
            backend.health.mark_failed()
            logger.info("%s: frame %d claimed in this process: %s", type(conn).__name__, frame_id, type(exc).__name__)
            if earlier is not None and pending is not None:
                await _write(conn, pending)  # Tried once more on its own (logged if Redis is still down).
    else:
        await flush_record(conn)
    first, record = await local.claim(key, frame_id, seconds)
    return local, first, record


def _frame_id(conn: Any, meta: dict[str, Any]) -> int | None:
    frame_id = meta.get("id")
    if frame_id is None or conn._socket_key is None:
        return None
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 < frame_id < MAX_FRAME_ID:
        raise Rejected(
            INVALID_FRAME,
            f"meta.id must be a positive integer below 2**53 (client.js numbers frames); got {frame_id!r}.",
        )
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
        record = await bounded_store(store, store.recorded(conn._socket_key, frame_id))
    if record.startswith("["):
        *before, last = json.loads(record) or [None]
        for text in before:
            await conn.send(text_data=text)
        conn._held_reply = last  # Carries the ack, as the first run's last frame did.
        return
    logger.info("%s: the reply to frame %d is not kept (%r); the page resyncs", type(conn).__name__, frame_id, record)
    await resync(conn)
