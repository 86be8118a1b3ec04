"""What one websocket connection does: connect, receive, run handlers, reply, disconnect.

Kept apart from ``consumer.py`` (class creation) so each module has one job, and split by
concept so a newcomer finds each part by name:

- ``lifecycle``: the ASGI entry point, the handshake, surviving layer outages, the end;
- ``pipeline``: client frames and ``group_send`` runs, through one path, to a handler;
- ``sending``: frames to the client or the group, and channel-layer events.

The mixin runs on Channels' ``AsyncJsonWebsocketConsumer``: Channels delivers one message
at a time per connection, so a connection's handlers run in order and its replies keep
that order.
"""

from __future__ import annotations

from hypergen_consumers.connection.lifecycle import LifecycleMixin, build_request
from hypergen_consumers.connection.pipeline import PipelineMixin
from hypergen_consumers.connection.sending import SendingMixin

__all__ = ["ConnectionMixin", "build_request"]


class ConnectionMixin(LifecycleMixin, PipelineMixin, SendingMixin):
    """Per-connection behaviour of HypergenConsumer (see consumer.py for configuration)."""
