"""Routing: a consumer's ``path``, ``autoconsumers()`` and ``reverse()``.

Consumers register themselves per module when their class is created (see ``registry``);
``autoconsumers`` turns one module's consumers into a plain list of ``path()`` objects for Channels'
``URLRouter``, mounted at ``ws/<namespace>/<path>``, and remembers where each was mounted
so ``reverse()`` can build its URL with Django's own reversing (converters, quoting).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, path
from django.urls.resolvers import RegexPattern, RoutePattern, URLResolver
from hypergen.context import context

from hypergen_consumers.errors import CloseCode
from hypergen_consumers.routing import route_order
from hypergen_consumers.routing.registry import REGISTRY, Mount, label, mount_of
from hypergen_consumers.wire.mistake_log import mistakes

if TYPE_CHECKING:
    from hypergen_consumers.consumer import HypergenConsumer

    Consumer = type[HypergenConsumer]

__all__ = ["autoconsumers", "compile_route", "not_found_route", "reverse_url"]

_NAMESPACE = re.compile(r"^[a-zA-Z\d_-]+(/[a-zA-Z\d_-]+)*$")
_GROUP_NAMES_IN_REGEX = re.compile(r"\?P<[^>]+>")


@dataclass(frozen=True)
class Route:
    """A consumer's path relative to ``ws/<namespace>/``, compiled once."""

    path: str
    kwarg_names: tuple[str, ...]
    shape: str  # the regex without group names: equal shapes are the same route


def compile_route(owner: str, route: Any) -> Route:
    """Check a consumer's ``path`` and compile it; mistakes raise ImproperlyConfigured."""
    fix = 'Use a Django path() route relative to ws/<namespace>/, e.g. path = "room/<slug:room_name>/".'
    if not isinstance(route, str):
        msg = f"{owner}.path must be a string, not {route!r}. {fix}"
        raise ImproperlyConfigured(msg)
    if route.startswith("/") or route.startswith("ws/"):
        msg = f"{owner}.path = {route!r} must not start with '/' or 'ws/': autoconsumers() adds ws/<namespace>/. {fix}"
        raise ImproperlyConfigured(msg)
    if route.startswith("^") or route.endswith("$"):
        msg = f"{owner}.path = {route!r} looks like a regular expression; regex routes are not supported. {fix}"
        raise ImproperlyConfigured(msg)
    try:
        pattern = RoutePattern(route, is_endpoint=True)
        regex: str = pattern.regex.pattern  # pyright: ignore[reportAttributeAccessIssue]  (Django's descriptor)
    except ImproperlyConfigured as exc:
        msg = f"{owner}.path = {route!r} is not a valid route: {exc} {fix}"
        raise ImproperlyConfigured(msg) from exc
    return Route(route, tuple(pattern.converters), _GROUP_NAMES_IN_REGEX.sub("", regex))


def autoconsumers(module: ModuleType | str, namespace: str) -> list[URLPattern]:
    """Mount every consumer defined in ``module`` at ``ws/<namespace>/<path>``.

    Returns a plain list of ``path()`` objects for Channels' ``URLRouter``, like
    hypergen's ``autourls`` does for views, and makes the consumers' ``reverse()`` work.
    """
    if isinstance(module, str):
        module = import_module(module)
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        msg = (
            f"autoconsumers({module.__name__}, namespace={namespace!r}): the namespace must be "
            f"letters, digits, '-' and '_' (optionally separated by '/'), e.g. namespace=\"chat\"."
        )
        raise ImproperlyConfigured(msg)
    with REGISTRY.lock:
        consumers = [cls for cls in REGISTRY.by_module.get(module.__name__, []) if cls.autourl]
        if not consumers:
            msg = (
                f"autoconsumers({module.__name__}) found no HypergenConsumer subclass or @consumer "
                f"function defined in that module. Pass the module that defines your consumers."
            )
            raise ImproperlyConfigured(msg)
        patterns = []
        for cls in consumers:
            route = f"ws/{namespace}/{cls._route.path}"
            shape = f"{namespace}:{cls._route.shape}"
            other = REGISTRY.mounted_shapes.get(shape)
            if other is not None and other is not cls and label(other) != label(cls):
                msg = (
                    f"{label(cls)} and {label(other)} are both mounted at {route!r}. "
                    f"Change the path of one, or mount its module under another namespace."
                )
                raise ImproperlyConfigured(msg)
            name = label(cls)
            pattern = path(route, cls.as_asgi(), name=name)
            REGISTRY.mounts[cls] = Mount(namespace, route, URLResolver(RegexPattern(r"^/"), [pattern]), name)
            REGISTRY.mounted_shapes[shape] = cls
            patterns.append(pattern)
        patterns = route_order.order_patterns(patterns)
        for pattern in patterns:
            sample = route_order.sample_path(pattern)
            shadow = route_order.first_consumer_for(patterns, sample) if sample else None
            if sample and shadow is not pattern.callback.consumer_class:
                where = f"autoconsumers({module.__name__}, namespace={namespace!r})"
                msg = route_order.shadowing_message(pattern.callback.consumer_class, shadow, sample, where)
                raise ImproperlyConfigured(msg)
        # Last: a clean refusal for paths under the namespace that no consumer serves.
        patterns.append(URLPattern(UnmatchedInNamespace(namespace), refuse_unmatched, name=f"{namespace}:unmatched"))
    return patterns


class UnmatchedInNamespace(RegexPattern):  # type: ignore[misc]  # Django ships no types.
    """Matches ``ws/<namespace>/...`` paths that no consumer mounted in that namespace matches.

    ``autoconsumers()`` ends its list with it, so a path nobody serves gets a clean refusal
    instead of Channels' "No route found" (an HTTP 500 with a traceback). It looks at every
    ``autoconsumers()`` call of the namespace, so it never hides a later call's routes.
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(rf"^ws/{re.escape(namespace)}/", is_endpoint=False)
        self.namespace = namespace

    def match(self, path: str) -> Any:
        matched = super().match(path)
        if matched is None:
            return None
        mounts = [mount for mount in list(REGISTRY.mounts.values()) if mount.namespace == self.namespace]
        if any(_first_pattern(mount.resolver).pattern.match(path) for mount in mounts):
            return None
        return matched


def not_found_route() -> URLPattern:
    """A route for every path: put it last in the project's websocket routes.

    ``autoconsumers()`` already refuses paths under its own ``ws/<namespace>/`` cleanly; a
    path outside every namespace reaches the end of the ``URLRouter``, where Channels raises
    "No route found" and the browser sees an HTTP 500 (a 1006 close it retries forever).
    With this route last it is accepted and closed with 4404, which client.js treats as
    final::

        websocket_urlpatterns = [*chat.routing.websocket_urlpatterns, not_found_route()]
    """
    return URLPattern(RegexPattern(r"^", is_endpoint=False), refuse_unmatched, name="hypergen_consumers:not_found")


def _first_pattern(resolver: URLResolver) -> Any:
    """The one route a mount's resolver holds (``url_patterns`` is a cached_property, untyped)."""
    patterns: list[Any] = resolver.url_patterns  # type: ignore[assignment,unused-ignore]
    return patterns[0]


async def refuse_unmatched(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, then close with 4404, so a browser sees why (a refused handshake is only 1006)."""
    if scope["type"] != "websocket":
        msg = f"No route found for path {scope.get('path')!r}."
        raise ValueError(msg)
    mistakes.warning("autoconsumers", "not_found", f"no consumer at {scope.get('path', '')[:200]!r}; closed with 4404")
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": int(CloseCode.NOT_FOUND)})  # autobahn wants a plain int


def reverse_route(route: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """The path of a ``path()`` route for these URL args (Django's converters and quoting)."""
    path: str = _route_resolver(route).reverse("route", *args, **kwargs)
    return "/" + path


@functools.lru_cache(maxsize=256)
def _route_resolver(route: str) -> URLResolver:
    # One resolver per route: each URLResolver holds an asgiref Local (a ContextVar), so
    # building one per call would grow the calling task's context.
    return URLResolver(RegexPattern(r"^/"), [path(route, _unused_view, name="route")])


def _unused_view(*args: Any, **kwargs: Any) -> None:  # pragma: no cover - never called
    raise NotImplementedError


def reverse_url(cls: Consumer, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """The absolute ``ws://``/``wss://`` URL of ``cls`` for these URL args, from the current request.

    Only builds the URL; ``HypergenConsumer.reverse()`` is what also loads the client script.
    """
    path_ = mount_of(cls).reverse_path(args, kwargs)
    request = context.request if "request" in context else None
    if request is None:
        msg = (
            f"{cls.__name__}.reverse() builds an absolute ws:// URL from the current request, and there "
            f"is none. Call it while hypergen renders (a liveview, action or consumer handler), or "
            f"wrap the call in `with context(request=request):`."
        )
        raise RuntimeError(msg)
    url: str = request.build_absolute_uri(path_)
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url
