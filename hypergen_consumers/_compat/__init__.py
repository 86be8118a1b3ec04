"""Every patch of another library's internals, in one place.

hypergen_consumers is faster than plain hypergen + Channels in a few spots because it
leans on internals those libraries do not promise to keep: hypergen's global ``context``
object, pyrsistent's ``PMap`` slots, the keys ``hypergen()`` puts in its rendering context,
Django's ``_thread_ident``, Channels' ``aclose_old_connections`` and the ``AsyncConsumer``
methods a connection re-implements (``__call__``, ``dispatch``, and ``send`` for text). Each such patch lives in a
module of this package with

- ``check()``: inspects the shape the patch relies on and returns ``None`` when it is there,
  or a sentence saying what is different;
- ``apply()``: switches the patch on (called only after ``check()`` passed);
- a plain fallback that is slower but relies on nothing private, used until ``apply()``
  runs, and for good when ``check()`` fails (with a :class:`CompatWarning`).

:func:`apply_all` runs from ``HypergenConsumersConfig.ready()``, never at import: importing
the package leaves every other library as it was, so an upgrade that changes an internal
costs speed, not a crash.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from hypergen_consumers._compat import (
    channels_consumer,
    channels_db,
    channels_redis_receive,
    django_db,
    hypergen_context,
    pmap,
    rendering_state,
)

__all__ = ["CompatWarning", "Patch", "PATCHES", "apply_all"]


class CompatWarning(RuntimeWarning):
    """A library's internals differ from what a speed-up relies on; the plain way is used instead."""


@dataclass(frozen=True)
class Patch:
    name: str
    check: Callable[[], str | None]
    apply: Callable[[], None]
    fallback: str


#: In the order they are applied: the rendering check builds maps and uses the context.
PATCHES = (
    Patch("pyrsistent PMap", pmap.check, pmap.apply, pmap.FALLBACK),
    Patch("hypergen context", hypergen_context.check, hypergen_context.apply, hypergen_context.FALLBACK),
    Patch("hypergen rendering state", rendering_state.check, rendering_state.apply, rendering_state.FALLBACK),
    Patch("Django connection thread", django_db.check, django_db.apply, django_db.FALLBACK),
    Patch("Channels aclose_old_connections", channels_db.check, channels_db.apply, channels_db.FALLBACK),
    Patch(
        "Channels AsyncConsumer.__call__",
        channels_consumer.check_call,
        channels_consumer.apply_call,
        channels_consumer.CALL_FALLBACK,
    ),
    Patch(
        "Channels AsyncConsumer.dispatch",
        channels_consumer.check_dispatch,
        channels_consumer.apply_dispatch,
        channels_consumer.DISPATCH_FALLBACK,
    ),
    Patch(
        "Channels AsyncWebsocketConsumer.send",
        channels_consumer.check_send,
        channels_consumer.apply_send,
        channels_consumer.SEND_FALLBACK,
    ),
    Patch(
        "channels-redis blocking read",
        channels_redis_receive.check,
        channels_redis_receive.apply,
        channels_redis_receive.FALLBACK,
    ),
)


def apply_all() -> dict[str, bool]:
    """Apply every patch whose check passes; warn about the others. Returns ``{name: applied}``."""
    applied: dict[str, bool] = {}
    for patch in PATCHES:
        problem = patch.check()
        if problem is None:
            patch.apply()
        else:
            msg = (
                f"hypergen_consumers: {patch.name}: {problem}. Falling back to {patch.fallback}. "
                "Everything still works, only slower; please report this warning with the versions "
                "of hypergen, pyrsistent, Django and Channels you run."
            )
            warnings.warn(msg, CompatWarning, stacklevel=2)
        applied[patch.name] = problem is None
    return applied
