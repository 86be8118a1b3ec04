"""One backend per channel layer: what the package keeps beside the layer, and ``publish``.

Beside each channel layer the package keeps a replay window (``delivery.replay``), a reply
store and its in-process fallback (``delivery.replies``), a presence store and hub
(``presence``), and the layer's outage state (``delivery.recovery``). In memory for the
in-memory layer, in the layer's own Redis for channels-redis: the two variants,
:class:`MemoryBackend` and :class:`RedisBackend`, are chosen once by the layer's kind
(``kind``), which is also where the Redis host and prefix are found. ``backend_for(layer)``
finds a layer's backend, keyed by the layer object, so a layer Channels rebuilds (settings
changed) starts afresh.

Every message the package sends to a group goes through :func:`publish` (or the backend's
own :meth:`LayerBackend.publish`): ``group_send``, ``consumer_command``, ``user_command``, a
connection's broadcast, the logout push and presence news. One sequence, so none of them can
skip a step: the layer is required (a clear ImproperlyConfigured otherwise), the message is
stamped with its position in the group's replay window (before anyone can receive it, so a
page that reconnects gets it), the layer call is bounded (``calls.bounded``: a timeout, and
a share of the Redis pool), and a layer failure becomes ``ChannelLayerUnavailable``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers._compat import channels_redis_receive
from hypergen_consumers.delivery.recovery import LayerHealth
from hypergen_consumers.delivery.replay import MemoryWindow, RedisWindow, window_settings
from hypergen_consumers.delivery.replies import MemoryReplies, RedisReplies, ReplyStore
from hypergen_consumers.layers.calls import bounded, bounded_store, layer_errors, require_layer
from hypergen_consumers.layers.kind import Kind, kind_of, redis_place
from hypergen_consumers.layers.redis_client import LoopClients
from hypergen_consumers.presence.hub import Hub
from hypergen_consumers.presence.stores import MemoryStore, PresenceStore, RedisStore

__all__ = ["LayerBackend", "MemoryBackend", "RedisBackend", "backend_for", "publish"]


class LayerBackend:
    """Everything this process keeps beside one channel layer (see the module docstring)."""

    window: MemoryWindow | RedisWindow
    #: Where a socket's frame ids are claimed and its replies kept, for every process.
    replies: ReplyStore
    #: Where they are claimed while the layer's Redis is down (``frame_ids``); in memory, ``replies``.
    fallback_replies: MemoryReplies

    def __init__(self, layer: Any, kind: Kind) -> None:
        self.layer = layer
        self.kind = kind
        self.health = LayerHealth(layer)
        self._presence: PresenceStore | None = None
        self._hub: Hub | None = None

    def _new_presence_store(self, owner: str) -> PresenceStore:
        raise NotImplementedError

    def presence_store(self, owner: str) -> PresenceStore:
        """The layer's presence store; ImproperlyConfigured (naming ``owner``, the consumer class
        that asked) for a layer that cannot keep presence."""
        if self._presence is None:
            self._presence = self._new_presence_store(owner)
        return self._presence

    def hub(self, owner: str, wake: Callable[[Any], None]) -> Hub:
        """This process's presence hub for the layer (created on first use)."""
        if self._hub is None:
            self._hub = Hub(self, self.presence_store(owner), wake)
        return self._hub

    async def stamp(self, group: str, message: dict[str, Any]) -> dict[str, Any]:
        """Store ``message`` in ``group``'s window (if it keeps one) and return it with its position.

        Before the layer's ``group_send``: a frame is in the window before anyone can receive
        it, so a failure here is reported to the sender, never swallowed.
        """
        frames, seconds = window_settings(group)
        if frames <= 0:
            return message
        window = self.window
        position, prev = await bounded_store(window, window.append(group, message, frames, seconds))
        return {**message, "group": group, "position": position, "prev": prev}

    async def publish(
        self, group: str, message: dict[str, Any], *, who: str, replay: bool = True, recover: bool = False
    ) -> None:
        """Send ``message`` to ``group``: stamped (``replay``), one bounded layer call, and a layer
        failure raised as ChannelLayerUnavailable naming ``who``.

        ``replay=False`` for events that are no frames of a stream (a logout push, presence
        news): a page that reconnects must not be sent them again. ``recover``, for a
        connection's own broadcast: an outage this process knows of is recovered from first
        (its connections back in their groups, or the broadcast would miss them), and a failed
        send is made once more at once (a pooled connection may have died with a restarted Redis).
        """
        layer = self.layer
        async with layer_errors(who, group):
            if recover and not await self.health.ensure_recovered():
                raise ConnectionError("the channel layer is still down")
            if replay:
                message = await self.stamp(group, message)
            try:
                await bounded(layer.group_send(group, message), layer)
            except Exception:
                if not recover:
                    raise
                await bounded(layer.group_send(group, message), layer)


class MemoryBackend(LayerBackend):
    """The in-memory layer (or any layer not in Redis): everything in this process."""

    def __init__(self, layer: Any, kind: Kind) -> None:
        super().__init__(layer, kind)
        self.window = MemoryWindow()
        self.replies = self.fallback_replies = MemoryReplies()

    def _new_presence_store(self, owner: str) -> PresenceStore:
        if self.kind is Kind.MEMORY:
            return MemoryStore()
        msg = (
            f"{owner}.presence = True needs channels' InMemoryChannelLayer or a channels_redis layer "
            f"(RedisChannelLayer or RedisPubSubChannelLayer) to keep presence in; the channel layer is "
            f"{type(self.layer).__name__}. Use one of those, or set presence = False."
        )
        raise ImproperlyConfigured(msg)


class RedisBackend(LayerBackend):
    """A channels-redis layer: windows, replies and presence in its Redis (its first host, under
    its prefix), shared by every process; replies fall back to this process while it is down."""

    def __init__(self, layer: Any, kind: Kind) -> None:
        super().__init__(layer, kind)
        self.host, self.prefix = redis_place(layer)
        clients = LoopClients(self.host)  # The window and the replies share one pool per loop.
        self.window = RedisWindow(clients, self.prefix)
        self.replies = RedisReplies(clients, self.prefix)
        self.fallback_replies = MemoryReplies()
        channels_redis_receive.fit_blocking_read(layer)  # Before its first receive (lifecycle makes it then).

    def _new_presence_store(self, owner: str) -> PresenceStore:
        return RedisStore(self.host, self.prefix)


_backends: weakref.WeakKeyDictionary[Any, LayerBackend] = weakref.WeakKeyDictionary()


def backend_for(layer: Any) -> LayerBackend:
    """The backend of the channel layer object ``layer`` (created on first use).

    The backend holds its layer (its hub and outage probe call it), so an entry stays while
    the process lives; Channels builds one layer per alias and process, and a new one only
    when the settings change (tests), which then gets a backend of its own."""
    backend = _backends.get(layer)
    if backend is None:
        kind = kind_of(layer)
        backend = _backends[layer] = (RedisBackend if kind.in_redis else MemoryBackend)(layer, kind)
    return backend


async def publish(
    group: str, message: dict[str, Any], *, who: str, alias: str = DEFAULT_CHANNEL_LAYER, replay: bool = True
) -> None:
    """``LayerBackend.publish`` on the channel layer ``alias``, which must be configured
    (ImproperlyConfigured naming ``who`` and the fix, otherwise)."""
    await backend_for(require_layer(alias, who=who)).publish(group, message, who=who, replay=replay)
