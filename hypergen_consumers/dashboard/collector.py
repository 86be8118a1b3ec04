"""What this process's sockets do, kept small, and published for the dashboard every second or two.

Receivers of ``hypergen_consumers.signals`` (connected when the dashboard app is installed)
keep per-consumer counts, recent handler times and a bounded log of events. A task on the
event loop (started by the first connection) sends a snapshot of it to the dashboard's group
through the channel layer every ``HYPERGEN_CONSUMERS_DASHBOARD_INTERVAL`` seconds, so every
dashboard page, in every process, sees every process; a process that stops publishing drops
off the pages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from hypergen_consumers import conf, signals
from hypergen_consumers.layers.backend import backend_for

if TYPE_CHECKING:
    from hypergen_consumers.consumer import HypergenConsumer

__all__ = [
    "DASHBOARD_GROUP",
    "SNAPSHOT_EVENT",
    "COLLECTOR",
    "Collector",
    "install",
    "uninstall",
    "publish_now",
]

logger = logging.getLogger("hypergen_consumers")

#: The group every dashboard page's socket joins (``hc-`` names are reserved: no URL reaches it).
DASHBOARD_GROUP = "hc-dashboard"
#: The channel-layer event a snapshot travels in (``DashboardConsumer.hypergen_consumers_dashboard``).
SNAPSHOT_EVENT = "hypergen_consumers.dashboard"
MAX_CONNECTIONS_LISTED = 200
MAX_EVENTS_PER_SNAPSHOT = 50
HANDLER_TIMES_KEPT = 512


def _user_of(connection: HypergenConsumer) -> tuple[str | None, Any]:
    user = getattr(getattr(connection, "request", None), "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None, None
    return user.get_username(), user.pk


class _ConsumerStats:
    __slots__ = ("route", "frames", "errors", "times")

    def __init__(self, route: str) -> None:
        self.route = route
        self.frames = 0
        self.errors: Counter[str] = Counter()
        self.times: deque[float] = deque(maxlen=HANDLER_TIMES_KEPT)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Collector:
    """This process's counts and events (one per process: ``COLLECTOR``)."""

    def __init__(self) -> None:
        self.host, self.pid, self.started = socket.gethostname(), os.getpid(), time.time()
        self.id = f"{self.host}:{self.pid}:{self.started:.3f}"
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.opened_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.consumers: dict[str, _ConsumerStats] = {}
        self.frames = 0
        self.errors = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS_PER_SNAPSHOT)
        self._task: asyncio.Task[None] | None = None

    def _stats(self, sender: type) -> _ConsumerStats:
        stats = self.consumers.get(sender.__name__)
        if stats is None:
            route = getattr(getattr(sender, "_route", None), "path", "")
            stats = self.consumers[sender.__name__] = _ConsumerStats(route)
        return stats

    def event(self, kind: str, consumer: str, detail: str, user: str | None = None) -> None:
        """Add a line to the log the next snapshot carries."""
        self.events.append({"at": time.time(), "kind": kind, "consumer": consumer, "detail": detail, "user": user})

    # --- signal receivers ---------------------------------------------------------------

    def opened(self, sender: type, connection: HypergenConsumer, **kwargs: Any) -> None:
        self.connections.add(connection)
        self.opened_at[connection] = time.time()
        self._stats(sender)
        self.event("connect", sender.__name__, getattr(connection, "group", ""), _user_of(connection)[0])
        self.start_publishing()

    def closed(self, sender: type, connection: HypergenConsumer, code: int | None, **kwargs: Any) -> None:
        self.connections.discard(connection)
        self.event("close", sender.__name__, f"code {code}", _user_of(connection)[0])

    def frame(
        self,
        sender: type,
        connection: HypergenConsumer,
        handler: str,
        outcome: str,
        seconds: float | None,
        **kwargs: Any,
    ) -> None:
        stats = self._stats(sender)
        stats.frames += 1
        self.frames += 1
        if seconds is not None:
            stats.times.append(seconds)
        if outcome != "ok":
            stats.errors[outcome] += 1
            self.errors += 1
            self.event("error", sender.__name__, f"{handler or '(no handler)'}: {outcome}", _user_of(connection)[0])

    def layer_outage(self, sender: Any, **kwargs: Any) -> None:
        self.event("outage", "", "the channel layer stopped answering")

    # --- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A small, JSON-safe picture of this process, with the events since the last one."""
        now = time.time()
        live = [c for c in list(self.connections) if not getattr(c, "_closing", False)]
        per_consumer = Counter(type(c).__name__ for c in live)
        listed = []
        for connection in live[:MAX_CONNECTIONS_LISTED]:
            username, user_id = _user_of(connection)
            listed.append(
                {
                    "channel": connection.channel_name,
                    "consumer": type(connection).__name__,
                    "group": getattr(connection, "group", ""),
                    "user": username,
                    "user_id": user_id,
                    "since": self.opened_at.get(connection, now),
                    "presence": bool(getattr(type(connection), "_presence_enabled", False)),
                }
            )
        consumers = {}
        for name, stats in self.consumers.items():
            times = list(stats.times)
            consumers[name] = {
                "route": stats.route,
                "connections": per_consumer.get(name, 0),
                "frames": stats.frames,
                "errors": dict(stats.errors),
                "p50": _percentile(times, 0.5),
                "p99": _percentile(times, 0.99),
            }
        events = list(self.events)
        self.events.clear()
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "at": now,
            "connections": len(live),
            "frames": self.frames,
            "errors": self.errors,
            "consumers": consumers,
            "sockets": listed,
            "listed_all": len(live) <= MAX_CONNECTIONS_LISTED,
            "events": events,
        }

    def start_publishing(self) -> None:
        """Start this process's snapshot task on the running loop, unless it runs already."""
        task = self._task
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._publish_forever(), name="hypergen_consumers dashboard snapshots")

    async def _publish_forever(self) -> None:
        while True:
            await publish_now(self)
            await asyncio.sleep(conf.current().dashboard_interval)


async def publish_now(collector: Collector | None = None) -> None:
    """Send one snapshot of this process to every dashboard page (errors are logged, not raised)."""
    from channels.layers import get_channel_layer

    collector = collector or COLLECTOR
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        snapshot = {"type": SNAPSHOT_EVENT, "snapshot": collector.snapshot()}
        await backend_for(layer).publish(DASHBOARD_GROUP, snapshot, who="dashboard", replay=False)
    except Exception as exc:  # Redis down: the next snapshot tries again.
        logger.debug("dashboard snapshot not sent: %s: %s", type(exc).__name__, exc)


COLLECTOR = Collector()


def _receivers() -> list[tuple[Any, Any]]:
    return [
        (signals.connection_opened, COLLECTOR.opened),
        (signals.connection_closed, COLLECTOR.closed),
        (signals.frame_handled, COLLECTOR.frame),
        (signals.layer_outage, COLLECTOR.layer_outage),
    ]


def install() -> None:
    """Connect the receivers (the dashboard app's ``ready()``); connecting twice is harmless."""
    for signal, receiver in _receivers():
        signal.connect(receiver, dispatch_uid=f"hypergen_consumers.dashboard.{receiver.__name__}")


def uninstall() -> None:
    """Disconnect them again (tests that install the dashboard for a while)."""
    for signal, receiver in _receivers():
        signal.disconnect(receiver, dispatch_uid=f"hypergen_consumers.dashboard.{receiver.__name__}")
    task = COLLECTOR._task
    if task is not None and not task.done():
        task.cancel()
    COLLECTOR._task = None
