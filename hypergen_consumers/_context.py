"""Make hypergen's rendering context safe for asyncio.

hypergen keeps what is being rendered (the HTML under construction, the command list)
in ``hypergen.context.context``, a ``threading.local``. Two async handlers that
interleave on one event loop thread would share it and write into each other's
output. We give that same object a ``contextvars`` storage instead: every asyncio
task and every ``sync_to_async`` call then sees its own copy, and plain threads keep
their own as before, so hypergen's HTTP liveviews and actions behave exactly as they did.

The swap changes the class of hypergen's existing ``context`` object, because hypergen
modules hold references to that object (``from hypergen.context import context as c``).
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from hypergen.context import Context, context
from pyrsistent import PMap, pmap

HYPERGEN_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "hypergen_consumers_hypergen_context", default=pmap()
)


_PMAP_BUCKETS = PMap.__dict__["_buckets"]  # pyrsistent's slot, filled on first need below


class _DictBackedPMap(PMap):  # type: ignore[type-arg]
    """A ``pmap`` that answers reads from a ``dict`` and builds its buckets only if asked.

    hypergen reads its rendering state (``context.hypergen.into``, ``.plugins``, ...) about
    thirty times per element; pyrsistent's bucket lookups, and building the buckets for a
    map made fresh for every message, were a third of a small handler's rendering time.
    The map is immutable, so the dict cannot go stale. Anything that needs pyrsistent's
    structure (``set``, ``update``, iteration) gets the buckets built on first use and
    returns ordinary pmaps from then on.
    """

    __slots__ = ("_dict",)

    @property
    def _buckets(self) -> Any:
        try:
            return _PMAP_BUCKETS.__get__(self)
        except AttributeError:
            buckets = pmap(self._dict)._buckets
            _PMAP_BUCKETS.__set__(self, buckets)
            return buckets

    def __getitem__(self, key: Any) -> Any:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __getattr__(self, key: str) -> Any:
        try:
            return self._dict[key]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {key!r}") from None


def fast_pmap(items: dict[str, Any]) -> PMap:  # type: ignore[type-arg]
    """An immutable map equal to ``pmap(items)`` whose reads cost one dict lookup."""
    fast = object.__new__(_DictBackedPMap)
    fast._size = len(items)
    fast._dict = dict(items)
    return fast


def _get(self: Context) -> Any:
    return HYPERGEN_CONTEXT.get()


def _set(self: Context, value: Any) -> None:
    HYPERGEN_CONTEXT.set(value)


class ContextVarContext(Context):
    """hypergen's ``Context`` with its state in a ContextVar instead of thread-local storage."""

    ctx = property(_get, _set)

    def __init__(self) -> None:
        """Do nothing, unlike hypergen's ``Context.__init__``.

        ``threading.local`` calls ``__init__`` again the first time each new thread touches
        the object; hypergen's resets ``ctx`` there, which with ContextVar storage would wipe
        the state a worker thread was just given. A fresh context gets the ContextVar's default.
        """

    def __getattr__(self, key: str) -> Any:
        try:
            return HYPERGEN_CONTEXT.get()[key]
        except KeyError:
            raise AttributeError("No such attribute: " + key) from None

    def __getitem__(self, key: str) -> Any:
        return HYPERGEN_CONTEXT.get()[key]

    def __contains__(self, key: object) -> bool:
        return key in HYPERGEN_CONTEXT.get()


def install() -> None:
    """Switch hypergen's global context to ContextVar storage (idempotent)."""
    if type(context) is ContextVarContext:
        return
    # Whatever the importing thread had set (normally nothing) carries over.
    current = context.__dict__.get("ctx", pmap())
    # Context.__setattr__ would store "__class__" as a context key, so bypass it.
    threading.local.__setattr__(context, "__class__", ContextVarContext)
    HYPERGEN_CONTEXT.set(current)
