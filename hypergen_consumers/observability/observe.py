"""The one-line calls the connection makes where something worth counting happens.

Each call updates the Prometheus meters (``metrics``; no-ops without prometheus_client) and
sends the matching Django signal (``hypergen_consumers.signals``) when anything listens.
Called from: ``lifecycle`` (opened, closing, left), ``pipeline`` (frame), ``sending``
(group_frame), ``recovery`` (layer_outage) and ``catchup`` (resync).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hypergen_consumers import signals
from hypergen_consumers.observability.metrics import OK, count_layer_outage, meters_for

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import Recorded

__all__ = ["OK", "opened", "closing", "left", "frame", "group_frame", "layer_outage", "resync"]

logger = logging.getLogger("hypergen_consumers")


def _send(signal: Any, sender: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("signal receiver %r raised %s: %s", receiver, type(result).__name__, result)


def opened(connection: Recorded) -> None:
    """The connection was accepted."""
    connection._hc.socket.observed_open = True
    meters_for(type(connection)).opened()
    if signals.connection_opened.receivers:
        _send(signals.connection_opened, type(connection), connection=connection)


def closing(connection: Recorded, code: int | None) -> None:
    """The server closed the socket with ``code``, or the client did: the first one counts."""
    if connection._hc.socket.observed_close is None and code is not None:
        connection._hc.socket.observed_close = code = int(code)
        meters_for(type(connection)).closed(code)


def left(connection: Recorded) -> None:
    """The connection left its groups for good (called once or more; counted once)."""
    if connection._hc.socket.observed_open:
        connection._hc.socket.observed_open = False
        meters_for(type(connection)).left()
        if signals.connection_closed.receivers:
            _send(
                signals.connection_closed,
                type(connection),
                connection=connection,
                code=connection._hc.socket.observed_close,
            )


def frame(connection: Recorded, handler: str, outcome: str, seconds: float | None) -> None:
    """A frame's outcome: ``"ok"`` or the error code the sender got; ``handler`` is ``""`` if none was found."""
    meters_for(type(connection)).frame(handler, outcome, seconds)
    if signals.frame_handled.receivers:
        _send(
            signals.frame_handled,
            type(connection),
            connection=connection,
            handler=handler,
            outcome=outcome,
            seconds=seconds,
        )


def group_frame(connection: Recorded) -> None:
    """A handler's output went to the connection's group."""
    meters_for(type(connection)).group_frame()
    if signals.group_frame_sent.receivers:
        _send(signals.group_frame_sent, type(connection), connection=connection)


def layer_outage(layer: Any) -> None:
    """The channel layer stopped answering (once per outage)."""
    count_layer_outage()
    if signals.layer_outage.receivers:
        _send(signals.layer_outage, None, layer=layer)


def resync(connection: Recorded) -> None:
    """A page was told to resync."""
    meters_for(type(connection)).resync()
    if signals.resync_sent.receivers:
        _send(signals.resync_sent, type(connection), connection=connection)
