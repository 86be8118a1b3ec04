"""Channel-layer event types and the translation of layer failures into one clear error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .errors import ChannelLayerUnavailable

__all__ = ["FRAME_EVENT", "RUN_EVENT", "layer_errors", "require_layer", "bounded"]

T = TypeVar("T")
DEFAULT_LAYER_TIMEOUT = 5.0

#: An encoded command list to send as is (broadcast output, consumer_command).
FRAME_EVENT = "hypergen_consumers.frame"
#: Run a named handler on the receiving connection (group_send).
RUN_EVENT = "hypergen_consumers.run"

# Mistakes in our arguments, not an unreachable layer: let them through unchanged.
_CALLER_ERRORS = (TypeError, ValueError, AssertionError)


def require_layer(alias: str = DEFAULT_CHANNEL_LAYER, who: str = "group_send"):  # type: ignore[no-untyped-def]
    """The channel layer ``alias``; ImproperlyConfigured naming ``who`` needs it and the fix."""
    layer = get_channel_layer(alias)
    if layer is None:
        msg = (
            f"{who} needs the channel layer {alias!r}, and none is configured: set CHANNEL_LAYERS = "
            f"{{'{alias}': {{'BACKEND': 'channels.layers.InMemoryChannelLayer'}}}} (one process) or a "
            f"channels_redis layer (several processes)."
        )
        raise ImproperlyConfigured(msg)
    return layer


@asynccontextmanager
async def layer_errors(operation: str, group: str) -> AsyncIterator[None]:
    """Re-raise a layer failure (Redis down, timeouts) as ChannelLayerUnavailable."""
    try:
        yield
    except _CALLER_ERRORS:
        raise
    except Exception as exc:
        msg = (
            f"{operation}({group!r}) could not reach the channel layer ({type(exc).__name__}: {exc}). "
            f"Is Redis running and CHANNEL_LAYERS pointing at it?"
        )
        raise ChannelLayerUnavailable(msg) from exc


async def bounded(operation: Awaitable[T]) -> T:
    """Await a layer operation for at most HYPERGEN_CONSUMERS_LAYER_TIMEOUT seconds.

    A Redis that died or restarted can leave a pooled connection that hangs instead of
    failing; a bound turns that into a prompt ChannelLayerUnavailable (via layer_errors).
    """
    timeout = float(getattr(settings, "HYPERGEN_CONSUMERS_LAYER_TIMEOUT", DEFAULT_LAYER_TIMEOUT))
    return await asyncio.wait_for(operation, timeout)
