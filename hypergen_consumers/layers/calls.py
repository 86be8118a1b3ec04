"""Channel-layer event types, bounded layer calls, and the translation of layer failures into one clear error.

Every layer call the package makes goes through :func:`bounded` (every message to a group
through ``backend.publish``, which bounds its call here): at most
``HYPERGEN_CONSUMERS_LAYER_CONCURRENCY`` (default 50) at once per process, each for at
most ``HYPERGEN_CONSUMERS_LAYER_TIMEOUT`` seconds. Why the count: each concurrent call
holds one connection of channels-redis's pool, and redis-py 8 caps a pool at 100
connections and *fails* the excess (``MaxConnectionsError``) instead of waiting. 500
clients leaving at once would otherwise make hundreds of ``group_discard`` calls fail and
leave dead channels in their groups. Calls that must happen (joining and leaving groups)
go through :func:`retried` as well.
"""

from __future__ import annotations

import asyncio
import random
import sys
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers import conf
from hypergen_consumers.errors import ChannelLayerUnavailable
from hypergen_consumers.layers.kind import kind_of

__all__ = [
    "FRAME_EVENT",
    "RUN_EVENT",
    "CATCHUP_EVENT",
    "layer_errors",
    "require_layer",
    "bounded",
    "retried",
    "receive",
    "cancel_until_done",
]

T = TypeVar("T")
#: Attempts of a call that must happen (joining or leaving a group), with a short backoff.
LAYER_ATTEMPTS = 4
_FIRST_RETRY_DELAY = 0.05
#: How long a cancelled layer receive gets to end before it is cancelled again (see ``receive``).
RECANCEL_AFTER = 0.05

#: An encoded command list to send as is (broadcast output, consumer_command).
FRAME_EVENT = "hypergen_consumers.frame"
#: Run a named handler on the receiving connection (group_send).
RUN_EVENT = "hypergen_consumers.run"
#: Catch up from the replay window (sent to each connection after a layer outage).
CATCHUP_EVENT = "hypergen_consumers.catchup"

# Mistakes in our arguments, not an unreachable layer: let them through unchanged.
_CALLER_ERRORS = (TypeError, ValueError, AssertionError)


def require_layer(alias: str = DEFAULT_CHANNEL_LAYER, who: str = "group_send"):  # type: ignore[no-untyped-def]
    """The channel layer ``alias``; ImproperlyConfigured naming ``who`` needs it and the fix."""
    layer = get_channel_layer(alias)
    if layer is None:
        msg = (
            f"{who} needs the channel layer {alias!r}, and none is configured: set CHANNEL_LAYERS = "
            f"{{'{alias}': {{'BACKEND': 'channels.layers.InMemoryChannelLayer'}}}} (one process) or a "
            f"channels_redis layer (several processes)."
        )
        raise ImproperlyConfigured(msg)
    return layer


@asynccontextmanager
async def layer_errors(operation: str, group: str) -> AsyncIterator[None]:
    """Re-raise a layer failure (Redis down, timeouts) as ChannelLayerUnavailable."""
    try:
        yield
    except _CALLER_ERRORS:
        raise
    except Exception as exc:
        msg = (
            f"{operation}({group!r}) could not reach the channel layer ({type(exc).__name__}: {exc}). "
            f"Is Redis running and CHANNEL_LAYERS pointing at it?"
        )
        raise ChannelLayerUnavailable(msg) from exc


# One semaphore per event loop (an asyncio.Semaphore belongs to the loop it first waits on).
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _semaphore() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    size = conf.current().layer_concurrency
    entry = _semaphores.get(loop)
    if entry is None or entry[0] != size:
        entry = (size, asyncio.Semaphore(size))
        _semaphores[loop] = entry
    return entry[1]


def _pooled(layer: Any) -> bool:
    """Whether ``layer`` holds a pooled Redis connection per call in flight, so needs the count:
    a channels-redis layer (``kind``), or one of our Redis stores (``pooled = True``), whose pool
    redis-py 8 caps at 100 connections too (1,000 connections catching up at once overflowed it)."""
    return layer is not None and (kind_of(layer).in_redis or getattr(layer, "pooled", False))


async def bounded(operation: Awaitable[T], layer: Any = None) -> T:
    """Await a layer operation for at most HYPERGEN_CONSUMERS_LAYER_TIMEOUT seconds; on a pooled
    ``layer`` (channels-redis), as one of at most HYPERGEN_CONSUMERS_LAYER_CONCURRENCY at once.

    A Redis that died or restarted can leave a pooled connection that hangs instead of
    failing; a bound turns that into a prompt ChannelLayerUnavailable (via layer_errors).
    The wait for a turn is not part of the timeout: a burst queues, it does not fail. The
    in-memory layer holds no connections and skips the count (queueing would only slow it).
    """
    timeout = conf.current().layer_timeout
    if not _pooled(layer):
        return await _within(operation, timeout)
    try:
        semaphore = _semaphore()
        await semaphore.acquire()
    except BaseException:
        _close(operation)
        raise
    try:
        return await _within(operation, timeout)
    finally:
        semaphore.release()


def bounded_store(store: Any, operation: Awaitable[T]) -> Awaitable[T]:
    """``bounded(operation)``, unless ``store`` lives in this process (``in_process = True``).

    The in-memory replay window and reply store answer at once, without I/O: a timeout
    armed around each of their calls (two per client frame, one per group frame) would only
    cost time. A Redis store's calls are bounded like every layer call.
    """
    return operation if getattr(store, "in_process", False) else bounded(operation, store)


async def _within(operation: Awaitable[T], timeout: float) -> T:
    """``operation``, cancelled after ``timeout`` seconds (``asyncio.TimeoutError``).

    On Python 3.11+ with ``asyncio.timeout``, in the caller's task: ``asyncio.wait_for``
    wraps the operation in a task of its own before 3.12, and a message with replay makes
    about four bounded calls (stamp, claim, record, group_send), so those tasks cost about a
    tenth of an in-memory round trip.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await operation
    return await asyncio.wait_for(operation, timeout)


async def retried(make_operation: Callable[[], Awaitable[T]], layer: Any, attempts: int = LAYER_ATTEMPTS) -> T:
    """``bounded(make_operation(), layer)``, tried again (with jittered backoff) if the layer failed."""
    delay = _FIRST_RETRY_DELAY
    for attempt in range(1, attempts + 1):
        try:
            return await bounded(make_operation(), layer)
        except _CALLER_ERRORS:
            raise
        except Exception:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay * (1 + random.random()))
            delay *= 4
    raise AssertionError("unreachable")  # pragma: no cover


def _close(operation: Any) -> None:
    close = getattr(operation, "close", None)
    if close is not None:
        close()  # Never awaited: no "coroutine was never awaited" warning.


async def receive(layer: Any, channel: str) -> dict[str, Any]:
    """``layer.receive(channel)`` that ends when its caller is cancelled, wherever the
    cancellation lands inside the layer.

    Why: redis-py writes every command through ``asyncio.wait_for``, which before Python 3.12
    returns the write's result instead of raising when a cancellation arrives in the same loop
    turn as the write completes (CPython gh-86296). channels-redis's receive then goes on
    reading (``BZPOPMIN`` after ``BZPOPMIN``, for the whole process's channels) and never ends,
    since nothing is ever sent to a closed connection's channel again; the connection's loop
    (``connection/receivers``, like Channels' ``await_many_dispatch``) awaits it after
    cancelling it once, so a closed socket's application
    instance lived on until daphne killed it (``application_close_timeout``, 10 s). Here the
    read runs in a task of its own, which a cancelled caller cancels again until it has ended.
    A message that arrives in that moment is dropped, as Channels' own cancel drops it: the
    connection is ending.
    """
    task: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(layer.receive(channel))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await cancel_until_done(task)
        raise


async def cancel_until_done(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` until it has ended (a swallowed cancellation, see ``receive``, is
    repeated after ``RECANCEL_AFTER`` seconds); its outcome is retrieved and dropped."""
    while not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=RECANCEL_AFTER)
    if not task.cancelled():
        task.exception()  # Retrieved: no "exception was never retrieved" at garbage collection.
