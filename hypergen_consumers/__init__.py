"""Real-time pages for Django in pure Python: typed websocket consumers for django-hypergen."""

from hypergen.liveview import NO_PERM_REQUIRED

from hypergen_consumers.consumer import HypergenConsumer
from hypergen_consumers.declaring.callback_checks import CallbackProblem
from hypergen_consumers.declaring.handlers import handler
from hypergen_consumers.decorators import consumer
from hypergen_consumers.errors import (
    FRAME_TOO_LARGE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INVALID_FRAME,
    LAYER_UNAVAILABLE,
    PERMISSION_DENIED,
    RATE_LIMITED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
    ChannelLayerUnavailable,
    CloseCode,
    ConsumerNotMounted,
    ErrorCode,
    Rejected,
    ReservedGroupName,
)
from hypergen_consumers.layers.messaging import aconsumer_command, agroup_send, consumer_command, group_send
from hypergen_consumers.layers.users import auser_command, user_command
from hypergen_consumers.routing.routes import autoconsumers, not_found_route

__all__ = [
    "HypergenConsumer",
    "handler",
    "consumer",
    "autoconsumers",
    "not_found_route",
    "group_send",
    "agroup_send",
    "consumer_command",
    "aconsumer_command",
    "user_command",
    "auser_command",
    "NO_PERM_REQUIRED",
    "ChannelLayerUnavailable",
    "ConsumerNotMounted",
    "CallbackProblem",
    "ErrorCode",
    "CloseCode",
    "Rejected",
    "ReservedGroupName",
    "INVALID_FRAME",
    "FRAME_TOO_LARGE",
    "UNKNOWN_HANDLER",
    "VALIDATION_ERROR",
    "PERMISSION_DENIED",
    "HANDLER_ERROR",
    "HANDLER_TIMEOUT",
    "LAYER_UNAVAILABLE",
    "RATE_LIMITED",
]
