"""One holder at a time, from any task, in the order they asked; taken at once when free.

Two things of a connection need that and take it on every message, so its cost counts:

- its sends: frames go out from the connection's own task, from a presence render's task and
  from a group's tap (``delivery.local_groups``); uvicorn's websockets lets a send wait for a
  full buffer, and the next must wait behind it so the frames keep their order;
- its dispatches: each source's pump (``connection.receivers``) handles one message at a time,
  in the order they arrived.

That is ``asyncio.Lock``'s behaviour, and :class:`FairLock` has it, with one difference: a free
lock is taken without an await (``take_now``). ``async with asyncio.Lock()`` costs three
coroutines even when nobody else wants it.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["FairLock"]


class FairLock:
    """``asyncio.Lock``'s fairness (first come, first served), taken at once when free."""

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] | None = None

    def locked(self) -> bool:
        return self._held

    def take_now(self) -> bool:
        """Take the lock if nobody holds it or waits for it; False otherwise (then ``await take()``)."""
        if self._held or self._waiters:
            return False
        self._held = True
        return True

    async def take(self) -> None:
        """Wait for the lock, behind whoever asked first, and take it."""
        if self.take_now():
            return
        if self._waiters is None:
            self._waiters = deque()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        except asyncio.CancelledError:
            if not self._held:
                self._wake_first()  # It was handed to us as we were cancelled: pass it on.
            raise
        self._held = True

    def give(self) -> None:
        """Release the lock; the first waiter gets it next."""
        self._held = False
        self._wake_first()

    def _wake_first(self) -> None:
        if self._waiters:
            first = self._waiters[0]
            if not first.done():
                first.set_result(None)
