"""Run handlers and sync hooks: ``def`` ones in a bounded thread pool, one connection at a time,
every one with a timeout.

Why a pool of our own: Channels' ``database_sync_to_async`` is asgiref's thread-sensitive
``sync_to_async``, so every ``def`` handler of the process would run on ONE thread, the
same thread Channels' ``AuthMiddleware`` needs to load the user of every new handshake.
One handler blocking for a few seconds would then stall every other connection's
``def`` handlers and every handshake. Here ``def`` code runs in a pool of
``HYPERGEN_CONSUMERS_WORKER_THREADS`` threads (default 16), with Django's
``close_old_connections`` before and after each run, as ``channels.db`` does, so the ORM
behaves as in a view.

Order: Channels hands a connection one message at a time, and a :class:`SerialLane` per
connection keeps that true even past a timeout, so one connection's handlers never overlap.

Timeouts: every run is bounded (``timeout`` on the class or on ``@handler``, default
``HYPERGEN_CONSUMERS_HANDLER_TIMEOUT``, 30 s; ``0``/``None`` in the setting: no bound).
An ``async def`` handler that times out is cancelled. A ``def`` handler cannot be killed
(Python cannot stop a thread): the sender gets ``handler_timeout`` at once, the thread runs
on, and whatever it returns is discarded (a warning is logged when it ends). The
connection's next run waits for it, within its own timeout: so a stuck connection holds
at most one worker thread, and it alone waits; other connections keep being served until
as many connections are stuck as there are workers. From then on their ``def`` runs queue
and answer ``handler_timeout`` without running (a queued run whose caller gave up never
starts), while ``async def`` handlers, broadcasts and handshakes go on unaffected.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
import types
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers import conf
from hypergen_consumers.connection.resumed import Resumed

__all__ = [
    "SerialLane",
    "HandlerTimedOut",
    "worker_pool",
    "handler_timeout",
    "check_timeout",
]

logger = logging.getLogger("hypergen_consumers")

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def handler_timeout(own: float | None) -> float | None:
    """The timeout of a run: its own (handler or class), else HYPERGEN_CONSUMERS_HANDLER_TIMEOUT."""
    if own is not None:
        return own
    return conf.current().handler_timeout


def check_timeout(where: str, value: Any) -> float | None:
    """Validate a ``timeout`` option at class creation: positive seconds, or None (the default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = (
            f"{where}.timeout must be a positive number of seconds (e.g. timeout = 10), or None for "
            f"HYPERGEN_CONSUMERS_HANDLER_TIMEOUT; got {value!r}."
        )
        raise ImproperlyConfigured(msg)
    return float(value)


def worker_pool() -> ThreadPoolExecutor:
    """The process's pool for ``def`` code (rebuilt if the setting changed, e.g. in tests)."""
    global _pool, _pool_size
    size = conf.current().worker_threads
    if _pool is None or _pool_size != size:
        old = _pool
        _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="hypergen_consumers")
        _pool_size = size
        if old is not None:
            old.shutdown(wait=False)
    return _pool


class HandlerTimedOut(Exception):
    """A run did not finish within its timeout (``handler_timeout`` to the sender)."""

    def __init__(self, what: str, seconds: float, *, waited_for_previous: bool = False) -> None:
        self.what = what
        self.seconds = seconds
        self.waited_for_previous = waited_for_previous
        why = " while waiting for this connection's previous handler, still running" if waited_for_previous else ""
        super().__init__(f"{what} did not finish within {seconds:g} s{why}")


class _Abandoned(Exception):
    """The caller gave up before the pool started the run: it is skipped, never run late."""


class SerialLane:
    """One connection's runs, in order, never overlapping, each bounded by its timeout."""

    def __init__(self) -> None:
        #: A ``def`` run that timed out and still holds a worker thread.
        self._straggler: asyncio.Future[Any] | None = None

    async def run_sync(self, what: str, timeout: float | None, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the worker pool (ORM-safe); HandlerTimedOut past ``timeout``."""
        started = time.monotonic()
        deadline = _deadline(timeout)
        await self._wait_for_straggler(what, timeout, deadline)
        state = {"abandoned": False}

        def guarded(*call_args: Any) -> T:
            if state["abandoned"]:
                raise _Abandoned()
            return func(*call_args)

        run = DatabaseSyncToAsync(guarded, thread_sensitive=False, executor=worker_pool())
        task = asyncio.ensure_future(run(*args))
        try:
            return await asyncio.wait_for(asyncio.shield(task), _remaining(deadline))
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            # The thread cannot be stopped: forget its result, keep the lane waiting for it.
            state["abandoned"] = True
            self._straggler = task
            task.add_done_callback(_report_late(what, started))
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise HandlerTimedOut(what, timeout or 0) from None

    async def run_async(self, what: str, timeout: float | None, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (cancelled past ``timeout``), after any straggling ``def`` run.

        Its first step runs at once, without a timer: most handlers finish without awaiting
        anything, and arming and cancelling a timer cost as much as a small handler's run.
        Only a handler that awaits something gets one, for the rest of the run.
        """
        started = time.monotonic()  # The loop's clock is asked only for a run that awaits (below).
        if self._straggler is not None:
            try:
                await self._wait_for_straggler(what, timeout, _deadline(timeout))
            except BaseException:
                _close(awaitable)
                raise
        rest: Awaitable[T]
        # On 3.10, wait_for runs the rest in a task of its own, with a copy of the context the
        # first step changed: so there the whole run goes to wait_for, as before.
        if type(awaitable) is types.CoroutineType and sys.version_info >= (3, 11):
            try:
                first = awaitable.send(None)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            rest = Resumed(awaitable, first)
        else:  # Another awaitable (a hook returning a future): awaited whole, under the timeout.
            rest = awaitable
        if timeout is None:
            return await rest
        deadline = asyncio.get_running_loop().time() + timeout - (time.monotonic() - started)
        return await _within(deadline, rest, what, timeout)

    async def _wait_for_straggler(self, what: str, timeout: float | None, deadline: float | None) -> None:
        straggler = self._straggler
        if straggler is None or straggler.done():
            self._straggler = None
            return
        try:
            await asyncio.wait_for(asyncio.shield(straggler), _remaining(deadline))
        except asyncio.TimeoutError:
            raise HandlerTimedOut(what, timeout or 0, waited_for_previous=True) from None
        except asyncio.CancelledError:
            raise
        except BaseException:
            pass  # Its outcome was reported when it ended; ours is a new run.
        self._straggler = None


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())


async def _within(deadline: float, awaitable: Awaitable[T], what: str, seconds: float) -> T:
    """Await ``awaitable`` in this task, cancelled at ``deadline``: ``asyncio.timeout``'s logic,
    with its timer in an empty context.

    The run's first step has set hypergen's rendering state in this task's context by now, and
    a timer keeps the context it was made in: a cancelled one stays in the event loop's heap
    until the heap is next cleaned, and with ``asyncio.timeout`` it would keep a finished run's
    state and request alive there (seen as growth in tests/test_reliability.py).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None or sys.version_info < (3, 11):  # pragma: no cover - 3.11 runs a handler in a task.
        try:
            return await asyncio.wait_for(awaitable, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise HandlerTimedOut(what, seconds) from None
    cancelling = task.cancelling()
    expired = []

    def expire() -> None:
        expired.append(True)
        task.cancel()

    quiet = contextvars.Context()
    if deadline <= loop.time():  # Past already: cancelled at its next await, as asyncio.timeout does.
        timer: asyncio.Handle = loop.call_soon(expire, context=quiet)
    else:
        timer = loop.call_at(deadline, expire, context=quiet)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if expired:
            expired.clear()
            if task.uncancel() <= cancelling:  # No other cancellation asked for: ours, a timeout.
                raise HandlerTimedOut(what, seconds) from None
        raise
    finally:
        timer.cancel()
        if expired:  # It expired, but the run ended before the cancellation reached it.
            task.uncancel()


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # A coroutine that will never be awaited: no "never awaited" warning.


def _report_late(what: str, started: float) -> Callable[[asyncio.Future[Any]], None]:
    def report(task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, _Abandoned):
            return
        took = time.monotonic() - started
        if exc is not None:
            logger.warning("%s raised after its timeout (%.1f s after it started): %r", what, took, exc)
        else:
            logger.warning(
                "%s finished %.1f s after it started, past its timeout; its output was discarded", what, took
            )

    return report
