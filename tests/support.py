"""Helpers only this package's own tests use (kept out of the public modules)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypergen_consumers.routing import registry


@contextmanager
def registry_snapshot() -> Iterator[None]:
    """Restore the registry on exit, so consumers defined inside a test never collide."""
    state = registry.REGISTRY
    with state.lock:
        saved = (
            {module: list(classes) for module, classes in state.by_module.items()},
            dict(state.mounts),
            dict(state.mounted_shapes),
            registry._asgi_application_imported,
        )
    try:
        yield
    finally:
        with state.lock:
            state.by_module, state.mounts, state.mounted_shapes, registry._asgi_application_imported = (
                saved[0],
                saved[1],
                saved[2],
                saved[3],
            )


async def wait_for(predicate: Any, timeout: float = 2, interval: float = 0.01) -> None:
    """Poll ``predicate`` until true (for conditions with no event to await)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)


def memory_or_redis(request: Any) -> Iterator[str]:
    """Body of a fixture with params ``["memory", "redis"]``: the in-memory layer as configured,
    or a real redis-server's ``RedisChannelLayer`` for the test's duration."""
    from django.test import override_settings

    from tests.servers import redis_server

    if request.param == "memory":
        yield request.param
        return
    with redis_server() as port:
        redis_layer = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}"]},
        }
        with override_settings(CHANNEL_LAYERS={"default": redis_layer}):
            yield request.param
