"""What a channel layer is, and where its Redis is: decided here, once per layer class.

Everything the package keeps beside a layer depends on the answer: a Redis layer's replay
windows, replies and presence live in its Redis (shared by every process, reached through
pooled connections that each layer call holds one of, see ``calls.bounded``); anything else
keeps them in this process. Before, four modules each asked in their own way (a class's
module name, ``isinstance``, a store's private method) and two found the Redis host in two
ways (the settings, the layer's attributes); a layer that one of them misjudged got a window
in one place and its presence in another.
"""

from __future__ import annotations

import enum
from typing import Any

from channels.layers import InMemoryChannelLayer

from hypergen_consumers.layers.keys import DEFAULT_LAYER_PREFIX

__all__ = ["Kind", "kind_of", "kind_of_class", "redis_place"]


class Kind(enum.Enum):
    """The channel layers this package knows."""

    #: channels' ``InMemoryChannelLayer``: one process.
    MEMORY = "memory"
    #: channels-redis's ``RedisChannelLayer``.
    REDIS = "redis"
    #: channels-redis's ``RedisPubSubChannelLayer``.
    PUBSUB = "pubsub"
    #: Any other layer: treated as one process (no presence, see ``presence.stores``).
    OTHER = "other"

    @property
    def in_redis(self) -> bool:
        """Whether the layer lives in Redis (and each of its calls holds a pooled connection)."""
        return self in (Kind.REDIS, Kind.PUBSUB)


def kind_of(layer: Any) -> Kind:
    """The kind of ``layer`` (``None``, for a call with no layer, is OTHER).

    Decided once per class and kept: ``bounded`` asks on every layer call."""
    return kind_of_class(type(layer))


_kinds: dict[type, Kind] = {}


def kind_of_class(cls: type) -> Kind:
    """The kind of the layers of class ``cls`` (also for a ``BACKEND`` setting, before any layer exists)."""
    kind = _kinds.get(cls)
    if kind is None:
        kind = _kinds[cls] = _decide(cls)
    return kind


def _decide(cls: type) -> Kind:
    if issubclass(cls, InMemoryChannelLayer):
        return Kind.MEMORY
    try:  # channels-redis is an optional extra ([redis]): imported only when asked.
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:
        return Kind.OTHER
    if issubclass(cls, RedisChannelLayer):
        return Kind.REDIS
    if issubclass(cls, RedisPubSubChannelLayer):
        return Kind.PUBSUB
    return Kind.OTHER


def redis_place(layer: Any) -> tuple[dict[str, Any], str]:
    """``(its first host's connection arguments, its prefix)`` for a Redis layer.

    The package keeps its own keys in the layer's first host, under the layer's prefix (see
    ``keys``). The pub/sub layer builds its connections per event loop, so its host and
    prefix are read from the arguments it was made with (as it reads them itself), which
    needs no running loop.
    """
    from channels_redis.utils import decode_hosts  # channels-redis: optional, and a Redis layer implies it.

    if kind_of(layer) is Kind.REDIS:
        hosts, prefix = layer.hosts, layer.prefix
    else:
        arguments = vars(layer).get("_kwargs") or {}  # vars(): its __getattr__ would build a loop layer.
        hosts, prefix = decode_hosts(arguments.get("hosts")), arguments.get("prefix", DEFAULT_LAYER_PREFIX)
    return hosts[0], prefix if isinstance(prefix, str) and prefix else DEFAULT_LAYER_PREFIX
