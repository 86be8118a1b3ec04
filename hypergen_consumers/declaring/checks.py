"""Django system checks (``manage.py check``): what can be proved before the first connection.

- ``hypergen_consumers.E001``: a consumer's URL is served by another consumer, because
  the project's websocket router lists a wider route first (see ``route_order``).
- ``hypergen_consumers.E002``: a liveview's callback names a handler that does not exist
  or passes the wrong number of arguments (see ``callback_checks``).
- ``hypergen_consumers.E003``: HYPERGEN_CONSUMERS_MAX_FRAME_BYTES is larger than what the
  server accepts (registered in ``outgoing``).
- ``hypergen_consumers.W002``: ``hypergen.context.context_middleware`` is not in MIDDLEWARE, so
  every liveview fails with an AttributeError that does not say why.
- ``hypergen_consumers.W003``: a websocket router that serves consumers does not end with
  ``not_found_route()``, so a path it does not serve fails the handshake with an HTTP 500 that
  a browser retries forever, instead of a 4404 close that client.js takes as final.
- ``hypergen_consumers.W004``: a consumer's channel layer (``channel_layer_alias``, "default")
  is not in CHANNEL_LAYERS, so its every handshake fails with an HTTP 500 that a browser
  retries forever (the server log says why; ``manage.py check`` says it before anyone connects).
- ``hypergen_consumers.W005``: a consumer's or a handler's ``perm`` names a permission no
  Permission row matches (a typo, an app label that does not exist), so every user but
  superusers is refused at runtime. A database check: it runs only when ``databases`` is
  passed (``manage.py check --database default``, ``migrate``, Django's test runner).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.db import router as db_router
from hypergen.liveview import NO_PERM_REQUIRED

from hypergen_consumers.declaring.callback_checks import source_problems
from hypergen_consumers.routing import route_order
from hypergen_consumers.routing.registry import REGISTRY

__all__ = [
    "check_channel_layers",
    "check_perms_exist",
    "check_websocket_routes",
    "check_context_middleware",
    "check_not_found_route",
    "url_routers",
]

#: A path no project serves: a router that matches it ends with a catch-all (not_found_route()).
_UNSERVED_PROBE = "hypergen-consumers-check/no/consumer/here/"

CONTEXT_MIDDLEWARE = "hypergen.context.context_middleware"


def url_routers(application: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every Channels URLRouter reachable from an ASGI application (through middleware)."""
    seen = set() if seen is None else seen
    if application is None or id(application) in seen:
        return
    seen.add(id(application))
    routes = getattr(application, "routes", None)
    if isinstance(routes, list):
        yield application
        for route in routes:
            yield from url_routers(route.callback, seen)
        return
    mapping = getattr(application, "application_mapping", None)
    if isinstance(mapping, dict):
        for inner in mapping.values():
            yield from url_routers(inner, seen)
    for attribute in ("inner", "application", "app"):
        yield from url_routers(getattr(application, attribute, None), seen)


def _asgi_application() -> Any:
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        return None
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name, None)


@checks.register(checks.Tags.urls)  # type: ignore[untyped-decorator]  # Django ships no types.
def check_websocket_routes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each mounted consumer's sample URL must reach that consumer in the project's router."""
    errors: list[checks.CheckMessage] = []
    for router in url_routers(_asgi_application()):
        for route in router.routes:
            consumer = getattr(route.callback, "consumer_class", None)
            if consumer is None or not hasattr(consumer, "_handlers"):
                continue
            sample = route_order.sample_path(route)
            shadow = route_order.first_consumer_for(router.routes, sample) if sample else None
            if sample and shadow is not consumer:
                where = f"the websocket URLRouter of {settings.ASGI_APPLICATION}"
                errors.append(
                    checks.Error(
                        route_order.shadowing_message(consumer, shadow, sample, where),
                        obj=consumer,
                        id="hypergen_consumers.E001",
                    )
                )
    return errors


@checks.register(checks.Tags.urls)  # type: ignore[untyped-decorator]  # Django ships no types.
def check_not_found_route(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each websocket router that serves consumers ends with a route for every other path."""
    warnings: list[checks.CheckMessage] = []
    for router in url_routers(_asgi_application()):
        serves_consumers = any(
            hasattr(getattr(route.callback, "consumer_class", None), "_handlers") for route in router.routes
        )
        if serves_consumers and route_order.first_consumer_for(router.routes, _UNSERVED_PROBE) is None:
            warnings.append(
                checks.Warning(
                    f"The websocket URLRouter of {settings.ASGI_APPLICATION} has no route for paths its "
                    f"consumers do not serve: Channels fails such a handshake with an HTTP 500, which a "
                    f"browser sees as a dropped connection and client.js retries forever.",
                    hint="End the project's websocket routes with not_found_route() (from hypergen_consumers), "
                    "e.g. websocket_urlpatterns = [*chat.routing.websocket_urlpatterns, not_found_route()]: "
                    "such paths are then closed with 4404, which client.js does not retry.",
                    id="hypergen_consumers.W003",
                )
            )
    return warnings


def _project_modules() -> Iterator[Any]:
    """Imported modules of installed apps that are not installed packages (the project's own)."""
    import sys

    from django.apps import apps

    prefixes = tuple(
        f"{config.name}." for config in apps.get_app_configs() if config.name not in ("hypergen", "hypergen_consumers")
    )
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None) or ""
        if name.startswith(prefixes) and filename.endswith(".py") and "site-packages" not in filename:
            yield module


@checks.register()  # type: ignore[untyped-decorator]  # Django ships no types.
def check_callbacks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Callbacks in the project's source that name no handler or send the wrong number of args."""
    errors: list[checks.CheckMessage] = []
    for module in _project_modules():
        for line, consumer, problem in source_problems(module):
            errors.append(
                checks.Error(f"{module.__file__}:{line}: {problem}", obj=consumer, id="hypergen_consumers.E002")
            )
    return errors


@checks.register()  # type: ignore[untyped-decorator]  # Django ships no types.
def check_context_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """hypergen's liveviews read the request from its context, which only its middleware sets."""
    if CONTEXT_MIDDLEWARE in (getattr(settings, "MIDDLEWARE", None) or ()):
        return []
    return [
        checks.Warning(
            f"{CONTEXT_MIDDLEWARE!r} is not in MIDDLEWARE, so every hypergen liveview (and the pages "
            f"that open consumers) fails with AttributeError: No such attribute: request.",
            hint=f"Add {CONTEXT_MIDDLEWARE!r} to MIDDLEWARE, after Django's SessionMiddleware and "
            f"AuthenticationMiddleware.",
            id="hypergen_consumers.W002",
        )
    ]


@checks.register()  # type: ignore[untyped-decorator]  # Django ships no types.
def check_channel_layers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every consumer needs its channel layer (its group lives there); Channels' default is none."""
    configured = getattr(settings, "CHANNEL_LAYERS", None) or {}
    with REGISTRY.lock:
        consumers = [cls for classes in REGISTRY.by_module.values() for cls in classes]
    missing: dict[str, list[str]] = {}
    for cls in consumers:
        if cls.channel_layer_alias not in configured:
            missing.setdefault(cls.channel_layer_alias, []).append(cls.__name__)
    return [
        checks.Warning(
            f"CHANNEL_LAYERS has no {alias!r} layer, which {_some(names)} need: every "
            f"handshake fails with an HTTP 500 and the browser retries forever.",
            hint=f"Set CHANNEL_LAYERS = {{'{alias}': {{'BACKEND': 'channels.layers.InMemoryChannelLayer'}}}} "
            f"(one process) or a channels_redis layer (several processes; docs: deployment).",
            id="hypergen_consumers.W004",
        )
        for alias, names in sorted(missing.items())
    ]


@checks.register(checks.Tags.database)  # type: ignore[untyped-decorator]  # Django ships no types.
def check_perms_exist(
    app_configs: Any = None, databases: Collection[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A perm no Permission row matches refuses everyone but superusers, and nothing says why.

    The rows are in the database, so this runs as Django's own database checks do: only when
    ``databases`` is given (``manage.py check --database default``, ``migrate``, the test
    runner), never in a plain ``manage.py check``, which must work without a database.
    """
    if databases is None or not apps.is_installed("django.contrib.auth"):
        return []
    permission = apps.get_model("auth", "Permission")
    alias = db_router.db_for_read(permission)
    if alias not in databases:
        return []
    try:
        rows = permission.objects.using(alias).values_list("content_type__app_label", "codename")
        known = {f"{label}.{codename}" for label, codename in rows}
    except DatabaseError:  # No auth tables yet: migrate runs the checks before it creates them.
        return []
    # migrate runs the checks before it creates the rows of a new model's permissions.
    known |= _declared_perms()
    # The project's consumers: the package's own dashboard requires a perm no row matches on
    # purpose (hypergen_consumers_dashboard.operate: superusers only), which is no mistake.
    with REGISTRY.lock:
        consumers = [cls for classes in REGISTRY.by_module.values() for cls in classes if not _from_this_package(cls)]
    warnings: list[checks.CheckMessage] = []
    for cls in sorted(consumers, key=lambda cls: (cls.__module__, cls.__qualname__)):
        owners = [(f"consumer {cls.__name__}", cls.perm, cls.any_perm)]
        owners += [(f"handler {cls.__name__}.{name}", spec.perm, spec.any_perm) for name, spec in cls._handlers.items()]
        for owner, perm, any_perm in owners:
            warnings += _unknown_perm_warnings(cls, owner, perm, any_perm, known)
    return warnings


def _from_this_package(cls: Any) -> bool:
    return str(cls.__module__).startswith("hypergen_consumers.")


def _declared_perms() -> set[str]:
    """The permissions installed models declare (Meta.default_permissions and Meta.permissions)."""
    declared: set[str] = set()
    for model in apps.get_models():
        opts = model._meta
        declared.update(f"{opts.app_label}.{action}_{opts.model_name}" for action in opts.default_permissions)
        declared.update(f"{opts.app_label}.{codename}" for codename, _ in opts.permissions)
    return declared


def _unknown_perm_warnings(cls: Any, owner: str, perm: Any, any_perm: bool, known: set[str]) -> list[checks.Warning]:
    if perm is None or perm == NO_PERM_REQUIRED:  # A handler's None: the consumer's perm alone.
        return []
    perms = [perm] if isinstance(perm, str) else list(perm)
    unknown = [p for p in perms if p not in known]
    refused = "every user but superusers is refused"
    if any_perm and len(unknown) < len(perms):
        refused = "it never lets anyone in (the other perms still do)"
    warnings = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        warnings.append(
            checks.Warning(
                f"The perm {name!r} of {owner} matches no Permission in the database, so {refused} at runtime.",
                hint=f"Correct it{guess}: a perm is 'app_label.codename', as user.has_perm() takes it. "
                f"For a permission of your own, add it to a model's Meta.permissions and run migrate. "
                f"If an authentication backend grants it without a Permission row, add "
                f"'hypergen_consumers.W005' to SILENCED_SYSTEM_CHECKS.",
                obj=cls,
                id="hypergen_consumers.W005",
            )
        )
    return warnings


def _some(names: list[str], shown: int = 3) -> str:
    """A few names, and how many more: a project may have dozens of consumers."""
    names = sorted(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
