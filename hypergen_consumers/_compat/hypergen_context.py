"""Make hypergen's rendering context safe for asyncio: swaps the class of hypergen's ``context``.

hypergen keeps what is being rendered (the HTML under construction, the command list)
in ``hypergen.context.context``, a ``threading.local``. Two async handlers that
interleave on one event loop thread would share it and write into each other's
output. :func:`apply` gives that same object a ``contextvars`` storage instead: every
asyncio task and every ``sync_to_async`` call then sees its own copy, and plain threads
keep their own as before, so hypergen's HTTP liveviews and actions behave as they did.

The class of hypergen's existing object is changed, because hypergen modules hold
references to it (``from hypergen.context import context as c``). Relies on: that object
being exactly a ``hypergen.context.Context``, a ``threading.local`` keeping its state in
the attribute ``ctx``. Without that shape hypergen's context stays as it is, and
:func:`render_guard` makes async handlers on one event loop render one at a time
instead (correct, but an async handler awaiting mid-render holds up the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from hypergen import context as hypergen_context_module
from hypergen.context import Context
from pyrsistent import pmap

__all__ = ["FALLBACK", "HYPERGEN_CONTEXT", "ContextVarContext", "apply", "check", "is_active", "render_guard"]

FALLBACK = "hypergen's thread-local context, with async handlers rendering one at a time per event loop"

HYPERGEN_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "hypergen_consumers_hypergen_context", default=pmap()
)


def _get(self: Context) -> Any:
    return HYPERGEN_CONTEXT.get()


def _set(self: Context, value: Any) -> None:
    HYPERGEN_CONTEXT.set(value)


class ContextVarContext(Context):  # type: ignore[misc]  # hypergen ships no types.
    """hypergen's ``Context`` with its state in a ContextVar instead of thread-local storage."""

    ctx = property(_get, _set)

    def __init__(self) -> None:
        """Do nothing, unlike hypergen's ``Context.__init__``.

        ``threading.local`` calls ``__init__`` again the first time each new thread touches
        the object; hypergen's resets ``ctx`` there, which with ContextVar storage would wipe
        the state a worker thread was just given. A fresh context gets the ContextVar's default.
        """

    def __getattribute__(self, key: str) -> Any:
        """``context.hypergen`` and the other keys, read straight from the ContextVar.

        hypergen reads ``context.hypergen`` many times per element it renders. Through
        ``threading.local``'s own lookup, which found nothing on the object and fell back to
        ``__getattr__``, each read cost six times as much. The class's own names (methods,
        ``ctx``, dunders) are looked up as before, first, as they were; a name that is no key
        is looked up as before too (a method patched onto hypergen's ``Context`` after this
        module read the class's names).
        """
        if key in _CLASS_NAMES or key.startswith("__"):
            return super().__getattribute__(key)
        try:
            return HYPERGEN_CONTEXT.get()[key]
        except KeyError:
            return super().__getattribute__(key)  # AttributeError, then __getattr__'s, if it is none.

    def __getattr__(self, key: str) -> Any:
        try:
            return HYPERGEN_CONTEXT.get()[key]
        except KeyError:
            raise AttributeError("No such attribute: " + key) from None

    def __getitem__(self, key: str) -> Any:
        return HYPERGEN_CONTEXT.get()[key]

    def __contains__(self, key: object) -> bool:
        return key in HYPERGEN_CONTEXT.get()


#: What ``ContextVarContext`` itself answers (its methods and properties, hypergen's, and threading.local's).
_CLASS_NAMES = frozenset(dir(ContextVarContext))


def check(module: Any = hypergen_context_module) -> str | None:
    """``None`` if ``module`` (``hypergen.context``) has the context object the swap expects."""
    context_class = getattr(module, "Context", None)
    context = getattr(module, "context", None)
    if context_class is not Context:
        return "hypergen.context.Context is not the class this package subclasses"
    if type(context) is ContextVarContext:
        return None  # Already applied.
    if type(context) is not Context:
        return f"hypergen.context.context is a {type(context).__qualname__}, not a plain Context"
    if not issubclass(Context, threading.local) or "__slots__" in vars(Context):
        return "hypergen's Context is no longer a threading.local without slots"
    if "ctx" not in vars(context) or "ctx" in vars(Context):
        return "hypergen's context no longer keeps its state in the instance attribute 'ctx'"
    return None


def apply() -> None:
    """Switch hypergen's global context to ContextVar storage (idempotent)."""
    context = hypergen_context_module.context
    if type(context) is ContextVarContext:
        return
    # Whatever the applying thread had set (normally nothing) carries over.
    current = vars(context).get("ctx", pmap())
    # Context.__setattr__ would store "__class__" as a context key, so bypass it.
    threading.local.__setattr__(context, "__class__", ContextVarContext)
    HYPERGEN_CONTEXT.set(current)


def is_active() -> bool:
    return type(hypergen_context_module.context) is ContextVarContext


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def render_guard() -> AsyncIterator[None]:
    """Hold around an async handler's render: nothing with the patch, one lock per loop without.

    With a thread-local context, everything on the event loop thread shares one rendering
    state, so async renders must not interleave there.
    """
    if is_active():
        yield
        return
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    async with lock:
        yield
