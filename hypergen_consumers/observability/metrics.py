"""Prometheus metrics, when prometheus_client is installed (``hypergen-consumers[metrics]``).

prometheus_client is imported once, the first time a metric is needed; without it every
meter is a no-op and nothing is imported. The metric families live in prometheus_client's
default registry. Labels are bounded by construction: a consumer class's name, one of its
own handler names (``""`` when a client named none of them), an error code from the fixed
list, a close code. Never a group name, a URL value, a user or a string a client chose.

Cheap on the hot path: each consumer class gets one :class:`ConsumerMeters` holding the
label children it needs, made once (a handler's when it first runs), so counting a frame is
a dict lookup and an ``inc``, not a ``labels(...)`` call with a dict of labels.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConsumerMeters", "NoMeters", "meters_for", "count_layer_outage", "available", "OK"]

#: The ``outcome`` of a frame whose handler ran without an error frame.
OK = "ok"

#: Handler durations: 1 ms to 30 s (the default handler timeout).
HANDLER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Families:
    """The metric families, registered once in the default registry."""

    def __init__(self, prometheus_client: Any) -> None:
        counter, gauge, histogram = prometheus_client.Counter, prometheus_client.Gauge, prometheus_client.Histogram
        prefix = "hypergen_consumers_"
        self.connections = gauge(
            f"{prefix}connections", "Open websocket connections.", ["consumer"], multiprocess_mode="livesum"
        )
        self.frames = counter(
            f"{prefix}frames", "Frames handled, by outcome: ok or the error code.", ["consumer", "handler", "outcome"]
        )
        self.handler_seconds = histogram(
            f"{prefix}handler_seconds",
            "Time from a frame's checks to its handler's output sent.",
            ["consumer", "handler"],
            buckets=HANDLER_BUCKETS,
        )
        self.group_frames = counter(f"{prefix}group_frames", "Handler outputs sent to a group.", ["consumer"])
        self.closes = counter(f"{prefix}closes", "Connections closed, by close code.", ["consumer", "code"])
        self.layer_outages = counter(f"{prefix}layer_outages", "Channel layer outages seen by this process.")
        self.resyncs = counter(
            f"{prefix}resyncs", "Pages told to resync (away longer than the replay window).", ["consumer"]
        )


_families: _Families | None = None
_loaded = False


def _load() -> _Families | None:
    """prometheus_client's families, or None without it; imported and registered once."""
    global _families, _loaded
    if not _loaded:
        _loaded = True
        try:
            import prometheus_client
        except ImportError:
            return None
        _families = _Families(prometheus_client)
    return _families


def available() -> bool:
    """True when prometheus_client is installed (and so metrics are recorded)."""
    return _load() is not None


class _HandlerMeters:
    """One handler's label children: its histogram and a counter per outcome, each made when
    first needed (so no series exists that can never move, like the histogram of ``""``)."""

    __slots__ = ("families", "consumer", "name", "seconds", "outcomes")

    def __init__(self, families: _Families, consumer: str, name: str) -> None:
        self.families, self.consumer, self.name = families, consumer, name
        self.seconds: Any = None
        self.outcomes: dict[str, Any] = {}

    def outcome(self, outcome: str) -> Any:
        child = self.outcomes.get(outcome)
        if child is None:
            child = self.outcomes[outcome] = self.families.frames.labels(self.consumer, self.name, outcome)
        return child


class ConsumerMeters:
    """One consumer class's label children."""

    def __init__(self, families: _Families, cls: type) -> None:
        self.families = families
        self.consumer = consumer = cls.__name__
        self.handler_names = frozenset(getattr(cls, "_handlers", {}))
        self.connections = families.connections.labels(consumer)
        self.group_frames = families.group_frames.labels(consumer)
        self.resyncs = families.resyncs.labels(consumer)
        self.handlers: dict[str, _HandlerMeters] = {}
        self.closes: dict[int, Any] = {}

    def _handler(self, name: str) -> _HandlerMeters:
        meters = self.handlers.get(name)
        if meters is None:
            # Only the class's own handler names become labels: anything else is "".
            label = name if name in self.handler_names else ""
            meters = self.handlers.get(label)
            if meters is None:
                meters = self.handlers[label] = _HandlerMeters(self.families, self.consumer, label)
        return meters

    def frame(self, handler: str, outcome: str, seconds: float | None) -> None:
        meters = self._handler(handler)
        meters.outcome(outcome).inc()
        if seconds is not None:
            if meters.seconds is None:
                meters.seconds = self.families.handler_seconds.labels(self.consumer, meters.name)
            meters.seconds.observe(seconds)

    def opened(self) -> None:
        self.connections.inc()

    def left(self) -> None:
        self.connections.dec()

    def closed(self, code: int) -> None:
        child = self.closes.get(code)
        if child is None:
            child = self.closes[code] = self.families.closes.labels(self.consumer, str(code))
        child.inc()

    def group_frame(self) -> None:
        self.group_frames.inc()

    def resync(self) -> None:
        self.resyncs.inc()


class NoMeters:
    """Without prometheus_client: every meter does nothing."""

    def frame(self, handler: str, outcome: str, seconds: float | None) -> None:
        pass

    def opened(self) -> None:
        pass

    def left(self) -> None:
        pass

    def closed(self, code: int) -> None:
        pass

    def group_frame(self) -> None:
        pass

    def resync(self) -> None:
        pass


_NO_METERS = NoMeters()
_by_class: dict[type, ConsumerMeters | NoMeters] = {}


def meters_for(cls: type) -> ConsumerMeters | NoMeters:
    """The meters of a consumer class, made on first use."""
    meters = _by_class.get(cls)
    if meters is None:
        families = _load()
        meters = _by_class[cls] = _NO_METERS if families is None else ConsumerMeters(families, cls)
    return meters


def count_layer_outage() -> None:
    families = _load()
    if families is not None:
        families.layer_outages.inc()
