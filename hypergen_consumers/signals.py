"""Django signals for what the sockets do, so a project can log or trace them its own way.

The same events as the Prometheus metrics (``observability``), with more detail than a
metric label may carry (the connection itself, which holds its ``request``, user and group).
Every signal's ``sender`` is the consumer class (``None`` for ``layer_outage``, which belongs
to no consumer). Receivers run in the event loop, inline, in the connection's task: keep
them fast and non-blocking (hand slow work, like a database write, to a queue or a task).
A receiver that raises is logged and does not disturb the connection (``send_robust``)::

    from django.dispatch import receiver
    from hypergen_consumers.signals import frame_handled

    @receiver(frame_handled)
    def trace(sender, connection, handler, outcome, seconds, **kwargs):
        if outcome != "ok":
            logger.info("%s.%s: %s", sender.__name__, handler, outcome)
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "connection_opened",
    "connection_closed",
    "frame_handled",
    "group_frame_sent",
    "layer_outage",
    "resync_sent",
    "SIGNALS",
]

#: A connection was accepted (after its checks, in its groups). Arguments: ``connection``.
connection_opened = Signal()

#: A connection ended, however it ended. Arguments: ``connection``, ``code`` (the close code
#: the server sent or the client's, ``None`` if the socket ended without one).
connection_closed = Signal()

#: A handler was asked to run (a client's frame, or a ``group_send`` on this connection), or a
#: client frame was refused before reaching one. Arguments: ``connection``, ``handler`` (its
#: name; ``""`` when no handler was found), ``outcome`` (``"ok"`` or the error code the
#: sender got) and ``seconds`` (how long the handler's checks and run took; ``None`` when no
#: handler ran).
frame_handled = Signal()

#: A handler's output was sent to its group (one frame, however many members). Arguments:
#: ``connection`` (the sender's).
group_frame_sent = Signal()

#: The channel layer (Redis) stopped answering; sent once per outage per process. Arguments:
#: ``layer``.
layer_outage = Signal()

#: A reconnecting page was away longer than the replay window and was told to resync.
#: Arguments: ``connection``.
resync_sent = Signal()

#: Every signal above, for a receiver that wants them all (the dashboard does).
SIGNALS = (connection_opened, connection_closed, frame_handled, group_frame_sent, layer_outage, resync_sent)
