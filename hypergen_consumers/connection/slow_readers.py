"""Close a connection whose client stops reading, before the server buffers without bound.

daphne never makes ``send`` wait: a frame for a client that does not read (a stalled
tab, a hostile socket) is appended to Twisted's in-memory write buffer, which grows with
every broadcast (+100 MB per 100 MB sent) until keepalive drops the socket a minute later.
The ASGI app cannot see that buffer through ASGI, so under daphne this module finds the
connection's Twisted transport once, when the socket is accepted: the reactor's readers
(``IReactorFDSet.getReaders``, public) include it, and its protocol holds the queue whose
``get`` daphne passed to the app as ``receive``. After every send the connection reads the
transport's queued bytes; past HYPERGEN_CONSUMERS_MAX_QUEUED_BYTES it drops the TCP
connection, and with it the buffer, at once: a close frame would wait behind the bytes the
client does not read (and autobahn sends no close code outside 1000 and 3000-4999, so 1013
"try again later" cannot be sent). The browser sees 1006 and client.js reconnects, catching
up from the replay window. Sends to other connections never wait on it. Under any other server (uvicorn's websockets applies backpressure itself) or if
Twisted's buffer attributes change shape, no transport is found and nothing is bounded here.
"""

from __future__ import annotations

import sys
from typing import Any

from hypergen_consumers import conf

__all__ = ["SendBuffer", "find_send_buffer"]


class SendBuffer:
    """The bytes a Twisted transport holds that the client has not taken yet."""

    def __init__(self, transport: Any, limit: int) -> None:
        self.transport = transport
        self.limit = limit

    def queued(self) -> int:
        transport = self.transport
        return int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)

    def over_limit(self) -> bool:
        return self.queued() > self.limit

    def closed(self) -> bool:
        """Whether the TCP connection is closing or gone (Twisted's own flags)."""
        transport = self.transport
        return bool(getattr(transport, "disconnecting", False) or getattr(transport, "disconnected", False))

    def drop(self) -> None:
        """Drop the TCP connection now, discarding what the client did not read."""
        self.transport.abortConnection()


def _has_buffer_shape(transport: Any) -> bool:
    return all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen"))


def find_send_buffer(receive: Any) -> SendBuffer | None:
    """The send buffer of the daphne connection whose app got ``receive``; None anywhere else."""
    limit = conf.current().max_queued_bytes
    reactor = sys.modules.get("twisted.internet.reactor")
    queue = getattr(receive, "__self__", None)
    if limit <= 0 or reactor is None or queue is None or not hasattr(reactor, "getReaders"):
        return None
    for transport in reactor.getReaders():
        protocol = getattr(transport, "protocol", None)
        protocol = getattr(protocol, "wrappedProtocol", protocol)  # TLS wraps daphne's protocol
        if getattr(protocol, "application_queue", None) is queue:
            return SendBuffer(transport, limit) if _has_buffer_shape(transport) else None
    return None
