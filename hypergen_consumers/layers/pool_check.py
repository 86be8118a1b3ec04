"""System check: is the channels-redis connection pool large enough for this package?

redis-py 8 caps a connection pool at 100 connections by default and fails the excess
(``MaxConnectionsError``) instead of waiting. This package keeps at most
``HYPERGEN_CONSUMERS_LAYER_CONCURRENCY`` layer calls in flight per process (layers.py),
and channels-redis needs a few more connections of its own (the receive loop, the user's
own ``group_send`` calls), so a pool smaller than that number plus some headroom would
fail under a burst (every client leaving at once after a deploy) and leave dead channels
in their groups. Warned at start-up (``manage.py check``, ``runserver``), not silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register
from django.utils.module_loading import import_string

from hypergen_consumers import conf
from hypergen_consumers.layers.kind import kind_of_class

__all__ = ["check_redis_pool_size", "POOL_HEADROOM"]

#: Connections kept free for channels-redis's own receive loop and the user's calls.
POOL_HEADROOM = 10
_DEFAULT_ADDRESS = "redis://localhost:6379"


def _redis_default_pool_size() -> int:
    """What redis-py gives a pool without ``max_connections`` (100 since redis-py 8)."""
    import redis  # The optional [redis] extra: only asked about for a channels-redis layer.

    major = int(redis.__version__.split(".")[0])
    return 100 if major >= 8 else 2**31


def _pool_size(host: Any) -> int:
    if isinstance(host, dict):
        if host.get("max_connections"):
            return int(host["max_connections"])
        address = host.get("address", "")
    else:
        address = host
    if isinstance(address, str):
        value = parse_qs(urlsplit(address).query).get("max_connections")
        if value and value[0].isdigit():
            return int(value[0])
    return _redis_default_pool_size()


def _in_redis(backend: Any) -> bool:
    """Whether the ``BACKEND`` setting names a layer in Redis (decided as for a layer, see ``kind``)."""
    try:
        cls = import_string(str(backend))
    except ImportError:  # Misspelt, or channels-redis not installed: Channels says so itself.
        return False
    return isinstance(cls, type) and kind_of_class(cls).in_redis


@register("hypergen_consumers")  # type: ignore[untyped-decorator]  # Django ships no types.
def check_redis_pool_size(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn (hypergen_consumers.W001) for a channels-redis pool smaller than the package needs."""
    messages: list[CheckMessage] = []
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    concurrency = conf.current().layer_concurrency
    needed = concurrency + POOL_HEADROOM
    for alias, config in layers.items():
        if not _in_redis(config.get("BACKEND")):
            continue
        for host in (config.get("CONFIG") or {}).get("hosts") or [_DEFAULT_ADDRESS]:
            size = _pool_size(host)
            if size >= needed:
                continue
            messages.append(
                Warning(
                    f"CHANNEL_LAYERS[{alias!r}]: the Redis connection pool of {host!r} holds {size} "
                    f"connections; hypergen_consumers makes up to {concurrency} layer calls at once "
                    f"(HYPERGEN_CONSUMERS_LAYER_CONCURRENCY) and channels-redis needs about {POOL_HEADROOM} "
                    f"more, so a burst (every client reconnecting or leaving at once) would fail.",
                    hint=(
                        f"Give the host a larger pool, e.g. {{'address': ..., 'max_connections': {needed * 2}}}, "
                        f"or lower HYPERGEN_CONSUMERS_LAYER_CONCURRENCY below {max(1, size - POOL_HEADROOM)}."
                    ),
                    id="hypergen_consumers.W001",
                )
            )
    return messages
