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
from typing import Any

from . import replies
from .catchup import resync
from .connection_state import RUN_RECORDING
from .errors import INVALID_FRAME, LAYER_UNAVAILABLE, Rejected
from .executor import DEFAULT_HANDLER_TIMEOUT, handler_timeout
from .layers import bounded_store
from .replay import window_for, window_settings

__all__ = ["ACK_COMMAND", "MAX_FRAME_ID", "run_once"]

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
    store = replies.store_for(window_for(conn.channel_layer_alias, conn.channel_layer))
    try:
        first, record = await bounded_store(store, store.claim(conn._socket_key, frame_id, seconds))
    except Exception as exc:
        # Not acknowledged: client.js keeps the frame and re-sends it after its next reconnect.
        raise Rejected(
            LAYER_UNAVAILABLE, f"Could not record frame {frame_id} as run ({type(exc).__name__}); it was not run."
        ) from None
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
            await run()
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
        try:
            await bounded_store(store, store.record(conn._socket_key, frame_id, replies.encode_record(sent), seconds))
        except Exception as exc:
            logger.warning("%s: could not record the reply to frame %d (%s)", type(conn).__name__, frame_id, exc)


def _frame_id(conn: Any, meta: dict[str, Any]) -> int | None:
    frame_id = meta.get("id")
    if frame_id is None or conn._socket_key is None:
        return None
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 < frame_id < MAX_FRAME_ID:
        raise Rejected(
            INVALID_FRAME, f"meta.id must be a positive integer below 2**53 (client.js numbers frames); got {frame_id!r}."
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
