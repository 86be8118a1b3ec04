"""Error codes sent to clients, and the exceptions this package raises.

Every rejection of client input is answered with one frame holding one command,
``[["hypergen.websocket.error", {"code": CODE, "message": text, ...}]]``, and a log line.
The codes are module constants so tests and user code can import them instead of
repeating string literals.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "INVALID_FRAME",
    "FRAME_TOO_LARGE",
    "UNKNOWN_HANDLER",
    "VALIDATION_ERROR",
    "PERMISSION_DENIED",
    "HANDLER_ERROR",
    "LAYER_UNAVAILABLE",
    "RATE_LIMITED",
    "ERROR_CODES",
    "ERROR_COMMAND",
    "ChannelLayerUnavailable",
    "ConsumerNotMounted",
    "error_command",
]

#: Not JSON, not ``{"args": [...], "meta": {...}}``, a binary frame or a bad hypergen encoding.
INVALID_FRAME = "invalid_frame"
#: Larger than HYPERGEN_CONSUMERS_MAX_FRAME_BYTES.
FRAME_TOO_LARGE = "frame_too_large"
#: No ``@handler`` of that name.
UNKNOWN_HANDLER = "unknown_handler"
#: pydantic rejected the arguments; the error's ``errors`` holds its list.
VALIDATION_ERROR = "validation_error"
#: The user lacks the handler's ``perm``.
PERMISSION_DENIED = "permission_denied"
#: The handler raised (``traceback`` included only with DEBUG).
HANDLER_ERROR = "handler_error"
#: A broadcast could not reach the channel layer.
LAYER_UNAVAILABLE = "layer_unavailable"
#: Added to SPEC's list: the connection sent more than HYPERGEN_CONSUMERS_RATE_LIMIT messages/s.
RATE_LIMITED = "rate_limited"

ERROR_CODES = frozenset(
    {
        INVALID_FRAME,
        FRAME_TOO_LARGE,
        UNKNOWN_HANDLER,
        VALIDATION_ERROR,
        PERMISSION_DENIED,
        HANDLER_ERROR,
        LAYER_UNAVAILABLE,
        RATE_LIMITED,
    }
)

#: The client command that surfaces a server-side error in the browser.
ERROR_COMMAND = "hypergen.websocket.error"

#: Close code sent when the handshake is refused for lack of permission.
CLOSE_PERMISSION_DENIED = 4403


def error_command(code: str, message: str, **extra: Any) -> list[Any]:
    """Return the one client command that reports ``code`` to the sender."""
    if code not in ERROR_CODES:
        msg = f"Unknown error code {code!r}; use one of {sorted(ERROR_CODES)}."
        raise ValueError(msg)
    return [ERROR_COMMAND, {"code": code, "message": message, **extra}]


class ChannelLayerUnavailable(RuntimeError):
    """The channel layer (Redis, usually) could not be reached.

    Raised by ``group_send``/``consumer_command`` and their async twins, so a view or
    a Celery task can tell "nobody listening" (silent, as in Channels) from "the
    message went nowhere because the layer is down" (this exception).
    """


class ConsumerNotMounted(ImproperlyConfigured):
    """``reverse()`` was called on a consumer that no ``autoconsumers()`` call mounted."""
