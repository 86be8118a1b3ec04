"""Error codes and close codes sent to clients, and the exceptions this package raises.

Every rejection of client input is answered with one frame holding one command,
``[["hypergen.websocket.error", {"code": CODE, "message": text, ...}]]``, and a log line.
Code that refuses a frame raises :class:`Rejected` with its code; the connection turns it
into that frame in one place. The codes are one enum (:class:`ErrorCode`); the module
constants (``INVALID_FRAME``, ...) are its members, for tests and user code to import.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "ErrorCode",
    "CloseCode",
    "INVALID_FRAME",
    "FRAME_TOO_LARGE",
    "UNKNOWN_HANDLER",
    "VALIDATION_ERROR",
    "PERMISSION_DENIED",
    "HANDLER_ERROR",
    "HANDLER_TIMEOUT",
    "LAYER_UNAVAILABLE",
    "RATE_LIMITED",
    "ERROR_CODES",
    "ERROR_COMMAND",
    "Rejected",
    "ChannelLayerUnavailable",
    "ConsumerNotMounted",
    "ReservedGroupName",
    "error_command",
]


class ErrorCode(str, Enum):
    """The ``code`` of a ``hypergen.websocket.error`` command. Compares equal to its string."""

    #: Not JSON, not ``{"args": [...], "meta": {...}}``, a binary frame or a bad hypergen encoding.
    INVALID_FRAME = "invalid_frame"
    #: Larger than HYPERGEN_CONSUMERS_MAX_FRAME_BYTES (incoming), or output the server cannot send.
    FRAME_TOO_LARGE = "frame_too_large"
    #: No ``@handler`` of that name.
    UNKNOWN_HANDLER = "unknown_handler"
    #: pydantic rejected the arguments; the error's ``errors`` holds its list.
    VALIDATION_ERROR = "validation_error"
    #: The user lacks the handler's ``perm``.
    PERMISSION_DENIED = "permission_denied"
    #: The handler raised (``traceback`` included only with DEBUG).
    HANDLER_ERROR = "handler_error"
    #: The handler ran longer than its ``timeout``.
    HANDLER_TIMEOUT = "handler_timeout"
    #: A broadcast could not reach the channel layer.
    LAYER_UNAVAILABLE = "layer_unavailable"
    #: The connection sent more than HYPERGEN_CONSUMERS_RATE_LIMIT messages/s.
    RATE_LIMITED = "rate_limited"

    def __str__(self) -> str:
        return self.value


#: ``ErrorCode.INVALID_FRAME`` (``"invalid_frame"``).
INVALID_FRAME = ErrorCode.INVALID_FRAME
#: ``ErrorCode.FRAME_TOO_LARGE`` (``"frame_too_large"``).
FRAME_TOO_LARGE = ErrorCode.FRAME_TOO_LARGE
#: ``ErrorCode.UNKNOWN_HANDLER`` (``"unknown_handler"``).
UNKNOWN_HANDLER = ErrorCode.UNKNOWN_HANDLER
#: ``ErrorCode.VALIDATION_ERROR`` (``"validation_error"``).
VALIDATION_ERROR = ErrorCode.VALIDATION_ERROR
#: ``ErrorCode.PERMISSION_DENIED`` (``"permission_denied"``).
PERMISSION_DENIED = ErrorCode.PERMISSION_DENIED
#: ``ErrorCode.HANDLER_ERROR`` (``"handler_error"``).
HANDLER_ERROR = ErrorCode.HANDLER_ERROR
#: ``ErrorCode.HANDLER_TIMEOUT`` (``"handler_timeout"``).
HANDLER_TIMEOUT = ErrorCode.HANDLER_TIMEOUT
#: ``ErrorCode.LAYER_UNAVAILABLE`` (``"layer_unavailable"``).
LAYER_UNAVAILABLE = ErrorCode.LAYER_UNAVAILABLE
#: ``ErrorCode.RATE_LIMITED`` (``"rate_limited"``).
RATE_LIMITED = ErrorCode.RATE_LIMITED

#: Every code as a plain string (for schemas and membership tests).
ERROR_CODES = frozenset(code.value for code in ErrorCode)

#: The client command that surfaces a server-side error in the browser.
ERROR_COMMAND = "hypergen.websocket.error"


class CloseCode(IntEnum):
    """Websocket close codes this package uses. 4401 and 4403 are final: client.js does not retry."""

    #: The session ended (logout, expiry, user made inactive).
    SESSION_ENDED = 4401
    #: The user lacks the consumer's ``perm`` (at connect, or after a permission was taken away).
    PERMISSION_DENIED = 4403
    #: No consumer is mounted at the path (under an ``autoconsumers()`` namespace).
    NOT_FOUND = 4404
    #: Asked of the server when the channel layer is down at connect; the handshake is refused
    #: before it is accepted, so a browser sees 1006 (and client.js retries). daphne (autobahn)
    #: sends no close code outside 1000 and 3000-4999 on an accepted socket.
    INTERNAL_ERROR = 1011


#: Kept for code written against 0.1.
CLOSE_PERMISSION_DENIED = CloseCode.PERMISSION_DENIED


def error_command(code: ErrorCode | str, message: str, **extra: Any) -> list[Any]:
    """Return the one client command that reports ``code`` to the sender."""
    try:
        value = ErrorCode(code).value
    except ValueError:
        msg = f"Unknown error code {code!r}; use one of {sorted(ERROR_CODES)}."
        raise ValueError(msg) from None
    return [ERROR_COMMAND, {"code": value, "message": message, **extra}]


class Rejected(Exception):
    """A frame (or a server-side run) is refused; the sender is told ``code`` and ``message``.

    Raised anywhere in the frame pipeline; the connection converts it into one error frame
    (and a log line unless ``log`` is False) in one place.
    """

    def __init__(self, code: ErrorCode, message: str, *, log: bool = True, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.log = log
        self.extra = extra
        #: The handler it concerns (``""``: none found) and how long its run took (``None``:
        #: it did not run); set by the pipeline, for the metrics.
        self.handler = ""
        self.seconds: float | None = None


class ChannelLayerUnavailable(RuntimeError):
    """The channel layer (Redis, usually) could not be reached.

    Raised by ``group_send``/``consumer_command`` and their async twins, so a view or
    a Celery task can tell "nobody listening" (silent, as in Channels) from "the
    message went nowhere because the layer is down" (this exception).
    """


class ConsumerNotMounted(ImproperlyConfigured):  # type: ignore[misc]  # Django ships no types.
    """``reverse()`` was called on a consumer that no ``autoconsumers()`` call mounted."""


class ReservedGroupName(ValueError):
    """A custom ``group_name`` rule returned a name in the package's own namespace.

    Names starting with ``hc.`` (the default rule's ``hc.<module>.<Class>...``) or ``hc-``
    (internal groups) are reserved, so no client-chosen URL value can make a custom rule
    land in another consumer's group. At connect the connection is refused (4403); in the
    class lookup ``group_name(...)`` this is raised.
    """
