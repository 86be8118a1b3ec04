"""Wait for the next message of a connection from any of its sources, and hand it on.

Channels' ``await_many_dispatch`` does this with ``asyncio.wait`` on every message: a task
made per message, a set of tasks built, a callback added to and removed from each, and the
done ones found by scanning. Here each source has one task for the connection's life (its
pump), which reads a message and dispatches it itself once it holds the connection's turn (a
lock, so one message at a time, in the order they arrived); a message costs no task, no
future and no second wake-up. Measured on a client frame's round trip in process (callgrind,
instructions per message of ``ours_command``): 366,000 with a task per message, 323,000 with
these pumps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["dispatch_from"]


async def dispatch_from(
    sources: Sequence[Callable[[], Awaitable[Any]]], dispatch: Callable[[Any], Awaitable[None]]
) -> None:
    """Await every source at once; ``dispatch`` each message in the order they arrive, one at a
    time, and await that source again. Ends when a source or ``dispatch`` raises (or the
    caller is cancelled), with every source's task cancelled and awaited.

    A source that fails waits for its turn like a message, so a dispatch under way is never
    cut short by another source's failure; once anything has ended the loop, nothing more is
    dispatched.
    """
    loop = asyncio.get_running_loop()
    turn = asyncio.Lock()
    ended: asyncio.Future[None] = loop.create_future()
    closing = False

    def end(failure: BaseException) -> None:
        if ended.done():
            return
        if isinstance(failure, asyncio.CancelledError):
            ended.cancel()
        else:
            ended.set_exception(failure)

    async def pump(source: Callable[[], Awaitable[Any]]) -> None:
        while True:
            failure: BaseException | None = None
            message: Any = None
            try:
                message = await source()
            except asyncio.CancelledError:
                if closing:
                    raise
                failure = asyncio.CancelledError()  # The source's own, not the loop ending: it ends it.
            except BaseException as exc:
                failure = exc
            async with turn:
                if ended.done():
                    return
                if failure is not None:
                    end(failure)
                    return
                try:
                    await dispatch(message)
                except asyncio.CancelledError as exc:
                    if closing:
                        raise
                    end(exc)
                    return
                except BaseException as exc:
                    end(exc)
                    return

    pumps = [loop.create_task(pump(source)) for source in sources]
    try:
        await ended
    finally:
        closing = True
        for task in pumps:
            task.cancel()
        for task in pumps:
            try:
                await task
            except asyncio.CancelledError:
                pass
