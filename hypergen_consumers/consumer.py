"""``HypergenConsumer`` and the metaclass that registers it.

A subclass declares ``perm``, optionally ``path``/``target_id``/``group_name``/..., and
``@handler`` methods. At class creation the metaclass checks the configuration, compiles
each handler's validator and the route (``configuration``) and registers the class for
``autoconsumers()`` (``registry``): every mistake surfaces at import time as ImproperlyConfigured.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers.connection.mixin import ConnectionMixin
from hypergen_consumers.connection.state import Member
from hypergen_consumers.declaring.callback_checks import build_callback
from hypergen_consumers.declaring.checked_sends import check_push
from hypergen_consumers.declaring.client_script import ensure_client_script
from hypergen_consumers.declaring.configuration import configure
from hypergen_consumers.declaring.handlers import HandlerSpec
from hypergen_consumers.declaring.options import OPTIONS
from hypergen_consumers.delivery import replay
from hypergen_consumers.errors import ReservedGroupName
from hypergen_consumers.layers import messaging
from hypergen_consumers.presence import tracking as presence
from hypergen_consumers.presence import updates as presence_updates
from hypergen_consumers.routing import group_owners, registry
from hypergen_consumers.routing import routes as routing
from hypergen_consumers.routing.groups import (
    RESERVED_PREFIXES,
    default_group_name,
    is_reserved_group_name,
    safe_group_name,
)

__all__ = ["HypergenConsumer", "HypergenConsumerMeta"]


class _GroupNameLookup:
    """``ChatRoom.group_name(room_name="vip")`` on the class; ``self.group_name()`` on a connection."""

    def __get__(self, instance: Any, owner: type) -> Callable[..., str]:
        if instance is not None and hasattr(instance, "group"):
            group: str = instance.group

            def own_group(*args: Any, **kwargs: Any) -> str:
                return group if not args and not kwargs else owner.group_name(*args, **kwargs)  # type: ignore[attr-defined]

            return own_group

        def lookup(*args: Any, **kwargs: Any) -> str:
            name: str = owner._lookup_group_name(args, kwargs)  # type: ignore[attr-defined]
            return name

        return lookup


class HypergenConsumerMeta(type):
    """Registers each concrete subclass: route, handlers with validators, group rule."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
        localns = kwargs.pop("localns", None)
        if localns is None:
            localns = sys._getframe(1).f_locals
        if not any(isinstance(base, HypergenConsumerMeta) for base in bases):
            for option in OPTIONS:  # HypergenConsumer itself: the options' defaults.
                namespace.setdefault(option.stored_as or option.name, option.default)
            return super().__new__(mcs, name, bases, namespace, **kwargs)
        # ``group_name = ...`` and ``presence = True`` are switches; the class keeps its
        # group_name() and presence() lookups.
        switches = {o.name: namespace.pop(o.name) for o in OPTIONS if o.stored_as and o.name in namespace}
        cls: Any = super().__new__(mcs, name, bases, namespace, **kwargs)
        cls._abstract = bool(namespace.get("abstract", False))
        root = next(klass for klass in reversed(cls.__mro__) if isinstance(klass, HypergenConsumerMeta))
        configure(cls, root, namespace, switches, dict(localns) if localns is not None else {})
        if not cls._abstract:
            registry.register(cls)
        created: type = cls
        return created

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        kwargs.pop("localns", None)
        super().__init__(name, bases, namespace, **kwargs)


class HypergenConsumer(
    ConnectionMixin,
    AsyncJsonWebsocketConsumer,  # type: ignore[misc]
    metaclass=HypergenConsumerMeta,
):  # (Channels ships no types: its classes are Any.)
    """A Channels websocket consumer whose ``@handler`` methods render with hypergen.

    Subclass it, set ``perm`` and mark handlers with ``@handler``. Handler output (HTML
    morphed into ``target_id`` and ``command(...)`` calls) goes to every connection of the
    consumer's group, or to the sender only with ``broadcast=False``.
    """

    # The class options, for the type checker: their defaults, docs and checks are one table,
    # declaring/options.py's OPTIONS (the metaclass sets the defaults on this class).
    perm: ClassVar[Any]
    any_perm: ClassVar[bool]
    path: ClassVar[str]
    target_id: ClassVar[str | None]
    base_template: ClassVar[Any]
    broadcast: ClassVar[bool | str]
    user_plugins: ClassVar[tuple[Any, ...]]
    autourl: ClassVar[bool]
    timeout: ClassVar[float | None]
    presence_target_id: ClassVar[str | None]
    rate: ClassVar[str | None]
    replay_frames: ClassVar[int]
    replay_seconds: ClassVar[float]
    #: Lets hypergen's ``callback(ChatRoom, ...)`` call ``ChatRoom.reverse()`` itself.
    supports_hypergen_callback: ClassVar[bool] = True

    group_name = _GroupNameLookup()

    _group_rule: ClassVar[Callable[[Any], str] | None]  # The group_name option.
    _handlers: ClassVar[dict[str, HandlerSpec]] = {}
    _on_connect: ClassVar[HandlerSpec | None] = None
    _on_resync: ClassVar[HandlerSpec | None] = None
    _on_disconnect: ClassVar[Callable[..., Any] | None] = None
    _presence_meta: ClassVar[Callable[..., Any] | None] = None
    _on_presence: ClassVar[HandlerSpec | None] = None
    #: ``presence = True`` on a subclass (the metaclass stores it here, so the class keeps presence()).
    _presence_enabled: ClassVar[bool]
    _abstract: ClassVar[bool] = True
    #: Set by @consumer: the name of the function that is the class's one handler and takes
    #: the client's args directly. None for class consumers, whose first arg names the handler.
    _function_handler: ClassVar[str | None] = None
    _route: ClassVar[routing.Route]

    def on_connect(self, request: Any, **url_kwargs: Any) -> Any:
        """Override to set up per-connection state or render a first update.

        Called once the connection is accepted, with URL kwargs bound by name as in
        handlers. May be ``def`` (run in a worker thread) or ``async def``. What it renders
        goes to this connection only.
        """

    def on_resync(self, request: Any) -> Any:
        """Override to re-render a page that was away longer than the replay window.

        Called on a reconnect that cannot be caught up frame by frame. Without it the page
        gets ``hypergen:websocket:resync`` and reloads; with it, what it renders goes to this
        connection only and the page stays. URL kwargs bind by name, as in ``on_connect``.
        """

    def on_disconnect(self, request: Any, code: int) -> Any:
        """Override to clean up when the connection closes (after it left its group).

        May be ``def`` (run in a worker thread) or ``async def``.
        """

    def presence_meta(self, request: Any) -> dict[str, Any]:
        """Override to add to this connection's entry in presence (e.g. ``{"tab": ...}``).

        Called once when the connection joins presence, before anyone sees it. Return a
        JSON-safe dict; ``id`` (the connection's presence id) is added. May be ``def`` (run
        in the handlers' worker pool, not on the thread that handshakes need) or ``async def``;
        bounded by the class's handler timeout. If it fails, the connection stays out of presence.
        """
        return {}

    async def aupdate_presence(self, **changes: Any) -> None:
        """Change this connection's presence meta (``await self.aupdate_presence(voted=True)``).

        The keys given replace theirs in the meta (``presence_meta``'s, or an earlier update's);
        the group's ``on_presence`` renders follow on every connection, in every process,
        coalesced with joins and leaves. Values must be JSON-safe. Needs ``presence = True``.
        """
        await presence_updates.update(self, changes)

    def update_presence(self, **changes: Any) -> None:
        """``aupdate_presence`` from sync code: a ``def`` handler or hook (in its worker thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(self.aupdate_presence)(**changes)
            return
        msg = (
            f"{type(self).__name__}.update_presence() was called from async code; "
            "use 'await self.aupdate_presence(...)' there."
        )
        raise RuntimeError(msg)

    def on_presence(self, request: Any, present: Any, joins: Any, leaves: Any) -> Any:
        """Override to re-render when who is here changes (needs ``presence = True``).

        Runs on every connection of the group, each rendering for itself to its own
        socket. ``present`` is the whole list (as ``presence()`` returns it), ``joins`` and
        ``leaves`` the users whose connections came or went since this connection last
        rendered, each with just those metas (a meta changed by ``update_presence`` re-renders
        with the new list, and is neither a join nor a leave). Changes in a burst are
        coalesced: a connection renders the latest list once, not once per change.
        """

    @classmethod
    def presence(cls, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Who is connected to the group of these URL kwargs: ``[{"key", "user", "metas"}]``, per user.

        Read from the store every process shares (Redis with channels-redis). Sync; use
        ``apresence`` in async code.
        """
        return presence.presence_list(cls, cls._presence_group(args, kwargs))

    @classmethod
    async def apresence(cls, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Async twin of ``presence()``."""
        return await presence.apresence_list(cls, cls._presence_group(args, kwargs))

    @classmethod
    def _presence_group(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        if not cls._presence_enabled:
            msg = f"{cls.__name__} does not track presence: set presence = True on the class."
            raise ImproperlyConfigured(msg)
        return cls._lookup_group_name(args, kwargs)

    @classmethod
    def reverse(cls, *args: Any, **kwargs: Any) -> str:
        """The absolute ``ws://``/``wss://`` URL of this consumer for the given URL kwargs.

        Reversing a consumer is how a liveview says it uses one, so inside a liveview's
        rendering this also makes the page load ``client.js`` (the guide's "The browser side":
        a liveview that reverses a consumer loads it automatically); elsewhere it only returns the URL.
        """
        url = routing.reverse_url(cls, args, kwargs)
        ensure_client_script()
        return url

    @classmethod
    def callback(cls, *args: Any, **kwargs: Any) -> Any:
        """hypergen's ``callback()`` to this consumer, checked now (not when the user clicks).

        ``ChatRoom.callback("send_message", text, room_name="vip", debounce=200)``: the
        handler (its name, or the method itself, ``ChatRoom.send_message``, which editors
        can follow), the client's args, then URL kwargs (by name) and hypergen's callback
        options. A ``@consumer`` function takes the args directly. An unknown handler or a
        wrong number of args raises under DEBUG and logs an error otherwise.
        """
        return build_callback(cls, args, kwargs)

    @classmethod
    def group_send(cls, *args: Any, layer: str = DEFAULT_CHANNEL_LAYER, **url_kwargs: Any) -> None:
        """``ChatRoom.group_send("send_message", "hi", room_name="vip")``: a checked ``group_send``.

        The handler's name and its args are checked here, in the caller, before anything is
        sent (an unknown handler raises ValueError naming the handlers; bad args raise
        pydantic's ValidationError). The keyword arguments pick the group, as in
        ``ChatRoom.group_name(room_name="vip")``. A ``@consumer`` function takes the args
        directly: ``message_chatgroup.group_send("YO!", chatgroup_name="VIP")``. Sync; use
        ``agroup_send`` in async code.
        """
        group = cls._checked_push_group(args, url_kwargs, "group_send")
        messaging.group_send(group, *args, layer=layer)

    @classmethod
    async def agroup_send(cls, *args: Any, layer: str = DEFAULT_CHANNEL_LAYER, **url_kwargs: Any) -> None:
        """Async twin of ``group_send()``: ``await ChatRoom.agroup_send("send_message", "hi", room_name="vip")``."""
        group = cls._checked_push_group(args, url_kwargs, "agroup_send")
        await messaging.agroup_send(group, *args, layer=layer)

    @classmethod
    def _checked_push_group(cls, args: tuple[Any, ...], url_kwargs: Mapping[str, Any], function: str) -> str:
        check_push(cls, args, url_kwargs, f"{cls.__name__}.{function}")
        return cls._lookup_group_name((), url_kwargs)

    @classmethod
    def _url_kwargs_from(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        names = cls._route.kwarg_names
        if len(args) > len(names):
            msg = f"{cls.__name__} takes at most {len(names)} URL args {list(names)}; got {len(args)}."
            raise TypeError(msg)
        url_kwargs = dict(zip(names, args))
        clash = set(url_kwargs) & set(kwargs)
        if clash:
            msg = f"{cls.__name__}: URL kwarg(s) {sorted(clash)} given both by position and by name."
            raise TypeError(msg)
        url_kwargs.update(kwargs)
        return url_kwargs

    @classmethod
    def _lookup_group_name(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        url_kwargs = cls._url_kwargs_from(args, kwargs)
        if cls._group_rule is None:
            names = set(cls._route.kwarg_names)
            if set(url_kwargs) != names:
                msg = (
                    f"{cls.__name__}.group_name() needs exactly the URL kwargs of {cls.path!r}: "
                    f"{sorted(names)}; got {sorted(url_kwargs)}."
                )
                raise TypeError(msg)
        stand_in: Any = cls.__new__(cls)
        stand_in.url_kwargs = url_kwargs
        stand_in.scope = {"type": "websocket", "url_route": {"args": (), "kwargs": url_kwargs}}
        group = cls._group_for(stand_in)
        replay.remember_group(group, cls)  # consumer_command(group, ...) keeps this class's window.
        return group

    @classmethod
    def _group_for(cls, consumer: Member) -> str:
        if cls._group_rule is not None:
            name = safe_group_name(cls._group_rule(consumer))
            if is_reserved_group_name(name):
                msg = (
                    f"{cls.__name__}.group_name returned {name[:120]!r}, a reserved name (names starting "
                    f"with {' or '.join(map(repr, RESERVED_PREFIXES))} belong to the default rule and the "
                    f'package\'s own groups). Return a name of your own, e.g. f"team-{{...}}", so that '
                    f"no URL value can reach another consumer's group."
                )
                raise ReservedGroupName(msg)
            if name in registry.extra_groups_of_others(cls):
                msg = (
                    f"{cls.__name__}.group_name returned {name[:120]!r}, which another consumer lists in its "
                    f"groups: a client choosing the URL would reach that consumer's members. Return a name "
                    f'of your own, e.g. f"team-{{...}}".'
                )
                raise ReservedGroupName(msg)
        else:
            name = default_group_name(f"{cls.__module__}.{cls.__qualname__}", consumer.url_kwargs)
        group_owners.remember(name, cls)  # group_send(name, ...) can check the handler's name.
        return name
