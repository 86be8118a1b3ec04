"""The consumer registry: which consumer classes exist, per module, and where each is mounted.

The metaclass registers each concrete consumer class here when it is created (two
consumers of one module on one route raise at once); ``routing.autoconsumers()`` reads a
module's list and records where it mounted each class, which ``reverse()``, the AsyncAPI
document (``schema``) and the callback checks look up. One lock guards it all: classes
may be created in any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls.resolvers import URLResolver

from hypergen_consumers.errors import ConsumerNotMounted

if TYPE_CHECKING:
    from hypergen_consumers.consumer import HypergenConsumer
    from hypergen_consumers.routing.routes import Route

    Consumer = type[HypergenConsumer]

__all__ = [
    "REGISTRY",
    "Mount",
    "extra_groups_of_others",
    "Registry",
    "import_asgi_application",
    "label",
    "mount_of",
    "register",
]


@dataclass(frozen=True)
class Mount:
    namespace: str
    route: str
    resolver: URLResolver
    name: str

    def reverse_path(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        path: str = self.resolver.reverse(self.name, *args, **kwargs)
        return "/" + path


class Registry:
    """Every consumer class by module, and where ``autoconsumers()`` mounted each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_module: dict[str, list[Consumer]] = {}
        self.mounts: dict[Consumer, Mount] = {}
        self.mounted_shapes: dict[str, Consumer] = {}


REGISTRY = Registry()
_asgi_application_imported = False


def register(cls: Consumer) -> None:
    """Add a consumer class to its module's list; two consumers on one route raise."""
    route: Route = cls._route
    with REGISTRY.lock:
        siblings = REGISTRY.by_module.setdefault(cls.__module__, [])
        for other in siblings:
            if other._route.shape == route.shape and other.__qualname__ != cls.__qualname__:
                msg = (
                    f"{cls.__qualname__} and {other.__qualname__} in {cls.__module__} both use the route "
                    f"{route.path!r}. Give one of them another path."
                )
                raise ImproperlyConfigured(msg)
        # Re-defining a class of the same name (a module reload) replaces it.
        siblings[:] = [other for other in siblings if other.__qualname__ != cls.__qualname__]
        siblings.append(cls)


def extra_groups_of_others(cls: Consumer) -> set[str]:
    """The extra ``groups`` every registered consumer but ``cls`` lists (a custom rule may not return one)."""
    with REGISTRY.lock:
        classes = [other for siblings in REGISTRY.by_module.values() for other in siblings if other is not cls]
    return {group for other in classes for group in (getattr(other, "groups", None) or []) if isinstance(group, str)}


def label(cls: Consumer) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_asgi_application() -> None:
    """Import ASGI_APPLICATION once, so its routing runs autoconsumers() (as Django loads ROOT_URLCONF)."""
    global _asgi_application_imported
    if _asgi_application_imported:
        return
    _asgi_application_imported = True
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if dotted:
        import_module(dotted.rsplit(".", 1)[0])


def mount_of(cls: Consumer) -> Mount:
    """Where ``cls`` is mounted (importing ASGI_APPLICATION first if need be), or ConsumerNotMounted."""
    mount = REGISTRY.mounts.get(cls)
    if mount is None:
        import_asgi_application()
        mount = REGISTRY.mounts.get(cls)
    if mount is None:
        msg = (
            f"{cls.__name__} is not mounted: add autoconsumers({cls.__module__}, namespace=...) "
            f"to a websocket URLRouter (your routing.py)."
        )
        raise ConsumerNotMounted(msg)
    return mount
