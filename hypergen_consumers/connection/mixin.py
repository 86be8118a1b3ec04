"""What one websocket connection does: connect, receive, run handlers, reply, disconnect.

Kept apart from ``consumer.py`` (class creation) so each module has one job, and split by
concept so a newcomer finds each part by name:

- ``lifecycle``: the ASGI entry point, every message in, surviving layer outages, the end;
- ``handshake``: ``perm``, the groups, accept or refuse, ``on_connect``;
- ``client_frames``: a client frame, checked, run once per frame id, acknowledged;
- ``group_frames``: a group frame or ``group_send`` run, in stream order, and catching up;
- ``pipeline``: where both meet: the handler found, checked, run, its output sent;
- ``sending``: frames to the client or the group, and ``send_commands``;
- ``state``: the one record of what the connection keeps, a part per concern.

The mixin runs on Channels' ``AsyncJsonWebsocketConsumer``: Channels delivers one message
at a time per connection, so a connection's handlers run in order and its replies keep
that order.
"""

from __future__ import annotations

from hypergen_consumers.connection.client_frames import ClientFramesMixin
from hypergen_consumers.connection.group_frames import GroupFramesMixin
from hypergen_consumers.connection.handshake import HandshakeMixin
from hypergen_consumers.connection.lifecycle import LifecycleMixin, build_request
from hypergen_consumers.connection.sending import SendingMixin

__all__ = ["ConnectionMixin", "build_request"]


class ConnectionMixin(LifecycleMixin, HandshakeMixin, ClientFramesMixin, GroupFramesMixin, SendingMixin):
    """Per-connection behaviour of HypergenConsumer (see consumer.py for configuration)."""
