"""What crosses the wire, in both directions, bounded: decoding a client's frame, encoding ours.

``frame_decoding`` turns a client's text into arguments under fixed limits; ``finite`` keeps
NaN and infinities out of what handlers get; ``outgoing`` bounds and encodes every frame the
server sends; ``mistake_log`` keeps a client's bad frames from becoming log volume. The wire
format itself is documented in docs/protocol.rst.
"""
