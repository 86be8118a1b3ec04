"""channels-redis's blocking read, kept shorter than redis-py's socket timeout.

``RedisChannelLayer`` receives with ``BZPOPMIN`` blocking for ``brpop_timeout`` seconds (5).
redis-py 8 gives every connection a 5 s ``socket_timeout`` by default, so on a quiet process
the blocking read and the read timeout race: about every few seconds the read loses and
raises ``TimeoutError`` on a perfectly healthy Redis, which looks like an outage (a warning,
every connection re-added to its groups and sent a catch-up: measured at 300 idle
connections, 9 % CPU and 651 Redis commands/s instead of 2 % and 1/s; at 1,000, broadcasts
failed after 12 s of quiet). Here each layer a connection uses blocks for at most half its
pool's socket timeout, so an answer always comes first. It costs one short command pair
every couple of seconds per process, nothing per connection.

Relies on: ``RedisChannelLayer.brpop_timeout`` being the number ``receive_single`` passes
to ``BZPOPMIN`` (read from the instance on every call), and on ``hosts`` holding the
connection pool's arguments. Without that shape the layer is left as it is (a
:class:`CompatWarning` says so), and a socket timeout above 5 s in ``hosts`` avoids the race:
``{"address": "redis://...", "socket_timeout": 10}``.
"""

from __future__ import annotations

import inspect
from typing import Any

from hypergen_consumers.layers.kind import Kind, kind_of

__all__ = ["FALLBACK", "apply", "check", "fit_blocking_read", "socket_timeout_of"]

FALLBACK = (
    "channels-redis's own 5 s blocking read (with redis-py 8's default 5 s socket_timeout an idle "
    "process may report a healthy Redis as down; set 'socket_timeout': 10 in the host's options)"
)

_active = False


def _layer_class() -> Any:
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # The [redis] extra is not installed: nothing to fit.
        return None
    return RedisChannelLayer


def check(layer_class: Any = None) -> str | None:
    """``None`` if channels-redis reads ``brpop_timeout`` the way this patch relies on."""
    layer_class = _layer_class() if layer_class is None else layer_class
    if layer_class is None:
        return None
    timeout = getattr(layer_class, "brpop_timeout", None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        return "RedisChannelLayer has no numeric brpop_timeout (channels-redis changed its internals)"
    receive_single = getattr(layer_class, "receive_single", None)
    names = getattr(getattr(receive_single, "__code__", None), "co_names", ())
    if "brpop_timeout" not in names:
        return "RedisChannelLayer.receive_single no longer reads brpop_timeout"
    return None


def apply() -> None:
    global _active
    _active = True


def socket_timeout_of(host: Any) -> float | None:
    """The socket timeout redis-py gives connections to ``host`` (a ``hosts`` entry), or None (none)."""
    from channels_redis.utils import create_pool, decode_hosts  # Optional extra; a Redis host implies it.

    pool = create_pool(decode_hosts([host])[0])  # Builds no connection.
    if "socket_timeout" in pool.connection_kwargs:
        value = pool.connection_kwargs["socket_timeout"]
        return None if value is None else float(value)
    for klass in inspect.getmro(pool.connection_class):
        init = vars(klass).get("__init__")
        parameter = None if init is None else inspect.signature(init).parameters.get("socket_timeout")
        if parameter is not None:
            default = parameter.default
            return None if default in (None, inspect.Parameter.empty) else float(default)
    return None


def fit_blocking_read(layer: Any) -> None:
    """Make ``layer``'s blocking read end well before its socket timeout (its backend calls this
    once per layer object, see ``layers.backend``; a second call changes nothing)."""
    if not _active or kind_of(layer) is not Kind.REDIS:
        return
    timeouts = [socket_timeout_of(host) for host in layer.hosts]
    shortest = min((timeout for timeout in timeouts if timeout is not None), default=None)
    if shortest is None:
        return  # No read timeout (redis-py before 8, or set to None): nothing to race.
    wanted = shortest / 2 if shortest < 2 else max(1, int(shortest // 2))
    if wanted < layer.brpop_timeout:
        layer.brpop_timeout = wanted  # An instance attribute: other layers keep channels-redis's value.
