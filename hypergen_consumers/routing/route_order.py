"""Routes must not shadow each other: every consumer's ``reverse()`` has to reach that consumer.

Channels' ``URLRouter`` serves a URL with the first route that matches it, so with
``"<slug:room_name>/"`` listed before ``"increment/"`` the URL ``Increment.reverse()`` returns
is served by the room. ``autoconsumers()`` therefore lists specific routes first (a static
segment before a converter, a narrow converter before a wide one) and then proves the order:
a sample URL of each consumer must resolve to that consumer, or ImproperlyConfigured names
both. The system check (``manage.py check``) proves the same for the project's whole router,
where lists from several ``autoconsumers()`` calls are joined by hand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.urls import URLPattern
from django.urls.converters import IntConverter, PathConverter, SlugConverter, StringConverter, UUIDConverter
from django.urls.resolvers import RoutePattern

__all__ = ["order_patterns", "sample_path", "first_consumer_for", "shadowing_message"]

_CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
# Narrow before wide; a custom converter sits between slug and str.
_WIDTH = {UUIDConverter: 1, IntConverter: 2, SlugConverter: 3, StringConverter: 5, PathConverter: 6}
_CUSTOM_WIDTH = 4
_SAMPLES: tuple[Any, ...] = ("hypergen-sample", 7, uuid.UUID(int=7), "hypergen-sample/x")


def _segment_widths(pattern: URLPattern) -> tuple[int, ...]:
    """One number per path segment: 0 for a static segment, else the widest converter in it."""
    route: str = pattern.pattern._route
    converters = pattern.pattern.converters
    widths = []
    for segment in route.strip("/").split("/"):
        names = [match["name"] for match in _CONVERTER.finditer(segment)]
        widths.append(max((_WIDTH.get(type(converters[n]), _CUSTOM_WIDTH) for n in names), default=0))
    return tuple(widths)


def order_patterns(patterns: Sequence[URLPattern]) -> list[URLPattern]:
    """Specific routes first: compare segment by segment; ties keep the module's order."""
    return sorted(patterns, key=_segment_widths)


def sample_path(pattern: URLPattern) -> str | None:
    """A URL path the route serves, built with sample values (None if a converter takes none)."""
    route_pattern: RoutePattern = pattern.pattern
    kwargs = {}
    for name, converter in route_pattern.converters.items():
        for sample in _SAMPLES:
            try:
                text = converter.to_url(sample)
            except Exception:
                continue
            if isinstance(text, str) and re.fullmatch(converter.regex, text):
                kwargs[name] = text
                break
        else:
            return None
    path: str = route_pattern._route
    for match in _CONVERTER.finditer(route_pattern._route):
        path = path.replace(match[0], kwargs[match["name"]], 1)
    return path


def first_consumer_for(routes: Iterable[Any], path: str) -> Any:
    """The consumer class (or app) Channels' URLRouter would pick for ``path``, as it does."""
    for route in routes:
        if route.pattern.match(path.lstrip("/")):
            return getattr(route.callback, "consumer_class", route.callback)
    return None


def shadowing_message(consumer: type, shadow: Any, path: str, where: str) -> str:
    def label(cls: Any) -> str:
        return f"{cls.__module__}.{getattr(cls, '__qualname__', cls)}"

    return (
        f"{label(consumer)}'s URL /{path.lstrip('/')} is served by {label(shadow)}, whose route comes "
        f"first in {where}. Give one of them a path that cannot match the other's URLs, or list "
        f"the more specific route first."
    )
