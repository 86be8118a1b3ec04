"""Bound every frame the server sends by what the server can send.

daphne (autobahn underneath) refuses to send a message larger than its
``--websocket-max-message-size`` (1 MiB by default) and closes that socket with 1011. A
broadcast over the limit would so close every connection of the group, and client.js
reconnects, so one client could repeat it. Here an oversized handler output is refused
before it is sent (the sender gets ``frame_too_large``; nobody is dropped), error frames are
cut to fit (pydantic's error list keeps its first entries), and the connection's last
send checks once more, so nothing oversized ever reaches the server.

The same number bounds incoming frames: daphne drops a connection whose message is larger
(close code 1009) before this package sees it, so ``HYPERGEN_CONSUMERS_MAX_FRAME_BYTES``
larger than it would be a limit that never applies; a system check says so.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.checks import Error, register
from hypergen.liveview import encoder

from hypergen_consumers import conf
from hypergen_consumers.errors import ErrorCode, error_command

__all__ = [
    "encoded_size",
    "too_large",
    "error_frame",
    "with_command",
    "encode",
    "TAIL_BYTES",
    "too_large_to_deliver",
]

_TRIMMED_MESSAGE_CHARS = 1000


def encoded_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8, without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def with_command(text: str, command: str) -> str:
    """An encoded command list with one more encoded ``command`` at its end, without decoding it."""
    body = text.rstrip()
    return f"[{command}]" if body == "[]" else f"{body[:-1]},{command}]"


def too_large(text: str, limit: int | None = None) -> bool:
    limit = conf.current().server_max_message_bytes if limit is None else limit
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and encoded_size(text) > limit


#: ``json.dumps`` with these options builds an encoder on every call; one does for all (it keeps
#: no state between calls, so threads share it).
_ENCODER = json.JSONEncoder(default=encoder, separators=(",", ":"), allow_nan=False)


def encode(data: Any) -> str:
    """Encode what the server sends, as hypergen's ``dumps`` does, but never ``NaN`` or ``Infinity``.

    JSON has neither and no browser's ``JSON.parse`` reads them (see ``finite``): a value
    that holds one raises ValueError here, before anything is stored or sent.
    """
    try:
        return _ENCODER.encode(data)
    except ValueError as exc:
        if "JSON compliant" not in str(exc):
            raise
        msg = (
            f"Cannot send {exc}: NaN and Infinity are not JSON, and browsers cannot read them. "
            f"Send None or a string instead."
        )
        raise ValueError(msg) from None


#: Room kept under the server's limit for what is appended to a frame on its way to each
#: member: its position in the group's stream (``streams.with_position``, at most 61 bytes)
#: or a frame's ack (``frame_ids``, at most 43). Checking outputs against the limit less this
#: keeps a frame that fits a plain member from failing for every client.js member.
TAIL_BYTES = 128


def too_large_to_deliver(text: str) -> bool:
    """Whether ``text`` would be too large once its position or ack is appended (see TAIL_BYTES)."""
    return too_large(text, conf.current().server_max_message_bytes - TAIL_BYTES)


def _encode(commands: list[Any]) -> str:
    return encode(commands)


def error_frame(code: ErrorCode | str, message: str, **extra: Any) -> str:
    """The encoded error frame, cut to fit the server's limit (never dropped for its size).

    Long ``errors`` lists (pydantic's) keep as many leading entries as fit and say how many
    there were in ``errors_total``; other extras (a DEBUG traceback) are dropped last.
    """
    text = _encode([error_command(code, message, **extra)])
    limit = conf.current().server_max_message_bytes
    if not too_large(text, limit):
        return text
    message = message[:_TRIMMED_MESSAGE_CHARS]
    errors = extra.get("errors")
    if isinstance(errors, list):
        kept = len(errors)
        while kept:
            kept //= 2
            text = _encode([error_command(code, message, errors=errors[:kept], errors_total=len(errors))])
            if not too_large(text, limit):
                return text
    return _encode([error_command(code, message)])


@register()  # type: ignore[untyped-decorator]  # Django ships no types.
def check_frame_limits(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """HYPERGEN_CONSUMERS_MAX_FRAME_BYTES must not exceed what the server accepts."""
    values = conf.current()
    incoming, server = values.max_frame_bytes, values.server_max_message_bytes
    if "max_frame_bytes" in values.model_fields_set and incoming > server:
        return [
            Error(
                f"HYPERGEN_CONSUMERS_MAX_FRAME_BYTES = {incoming} is larger than the {server} bytes the server "
                f"accepts (HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES): daphne closes a connection that sends "
                f"more (code 1009) before hypergen-consumers sees the frame.",
                hint="Lower HYPERGEN_CONSUMERS_MAX_FRAME_BYTES, or start daphne with a larger "
                "--websocket-max-message-size and set HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES to it.",
                id="hypergen_consumers.E003",
            )
        ]
    return []
