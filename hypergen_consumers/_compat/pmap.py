"""A ``pmap`` whose reads are one dict lookup: reads pyrsistent's private ``PMap`` slots.

hypergen reads its rendering state (``context.hypergen.into``, ``.plugins``, ...) about
thirty times per element; pyrsistent's bucket lookups, and building the buckets for a map
made fresh for every message, were a third of a small handler's rendering time.
:class:`_DictBackedPMap` answers reads from a ``dict`` and fills PMap's own ``_buckets``
slot only when something needs pyrsistent's structure (``set``, ``update``, iteration),
after which it is an ordinary pmap.

Relies on: ``PMap`` keeping its state in the slots ``_size`` and ``_buckets``, and on
``set``/``update``/iteration/equality going through them. Without that shape
:func:`fast_pmap` is plain ``pmap``.
"""

from __future__ import annotations

import types
from typing import Any

from pyrsistent import PMap, pmap

__all__ = ["FALLBACK", "apply", "check", "fast_pmap", "is_active", "items_of"]

FALLBACK = "plain pyrsistent pmaps for the rendering state"

_buckets_slot: Any = None  # PMap's "_buckets" member descriptor, once apply() found it.
_active = False


class _DictBackedPMap(PMap):  # type: ignore[type-arg]
    """A ``pmap`` that answers reads from a ``dict`` and builds its buckets only if asked.

    The map is immutable, so the dict cannot go stale.
    """

    __slots__ = ("_dict",)
    _dict: dict[str, Any]
    _size: int

    @property
    def _buckets(self) -> Any:
        try:
            return _buckets_slot.__get__(self)
        except AttributeError:
            buckets = pmap(self._dict)._buckets
            _buckets_slot.__set__(self, buckets)
            return buckets

    def __getitem__(self, key: Any) -> Any:
        return _dict_of(self)[key]

    def __contains__(self, key: object) -> bool:
        return key in _dict_of(self)

    def __getattribute__(self, key: str) -> Any:
        """``state.commands`` and the other keys, read from the dict at once: PMap's own
        names (its methods, slots, dunders) first, as they were; then the map's keys (pyrsistent
        answers those in ``__getattr__``, after a full failed lookup: several times dearer); a
        name that is no key as before (a method patched onto ``PMap`` later)."""
        if key in _PMAP_NAMES or key.startswith("__"):
            return object.__getattribute__(self, key)
        try:
            return _dict_of(self)[key]
        except KeyError:
            return object.__getattribute__(self, key)  # AttributeError, then __getattr__'s, if it is none.

    def __getattr__(self, key: str) -> Any:
        try:
            return self._dict[key]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {key!r}") from None


#: What a ``_DictBackedPMap`` itself answers: PMap's methods and slots, and its own.
_PMAP_NAMES = frozenset(dir(_DictBackedPMap))
#: Reads the ``_dict`` slot without going through ``__getattribute__`` (hot: every key read).
_dict_of = vars(_DictBackedPMap)["_dict"].__get__


def _build(items: dict[str, Any]) -> PMap:  # type: ignore[type-arg]
    fast = object.__new__(_DictBackedPMap)
    fast._size = len(items)
    fast._dict = dict(items)
    return fast


def fast_pmap(items: dict[str, Any]) -> PMap:  # type: ignore[type-arg]
    """An immutable map equal to ``pmap(items)``; one dict lookup per read once applied."""
    if _active:
        return _build(items)
    return pmap(items)


def items_of(mapping: PMap) -> dict[str, Any]:  # type: ignore[type-arg]
    """A pmap's items as a ``dict`` to read or copy, never to change (for a dict-backed map it
    is the map's own dict: no buckets are built, unlike ``{**mapping}``)."""
    if type(mapping) is _DictBackedPMap:
        return mapping._dict
    return dict(mapping)


def _slot(name: str, base: type = PMap) -> Any:
    descriptor = base.__dict__.get(name)
    return descriptor if isinstance(descriptor, types.MemberDescriptorType) else None


def check(base: type = PMap) -> str | None:
    """``None`` if ``base`` (pyrsistent's PMap) has the slots and behaviour the fast map needs."""
    missing = [name for name in ("_size", "_buckets") if _slot(name, base) is None]
    if missing:
        return f"pyrsistent's PMap has no slot {' or '.join(map(repr, missing))} (pyrsistent changed its internals)"
    global _buckets_slot
    previous, _buckets_slot = _buckets_slot, _slot("_buckets", base)
    try:
        items = {"into": [1], "target_id": "t"}
        probe = _build(items)
        works = (
            probe == pmap(items)
            and probe.into == [1]
            and len(probe) == 2
            and dict(probe.set("ids", 1)) == {**items, "ids": 1}
            and dict(probe.update(pmap({"target_id": "u"}))) == {**items, "target_id": "u"}
            and dict(probe) == items
        )
    except Exception as exc:  # Any failure of the probe means the shape changed.
        return f"a dict-backed PMap does not behave like pyrsistent's ({exc!r})"
    finally:
        _buckets_slot = previous
    if not works:
        return "a dict-backed PMap does not compare or update like pyrsistent's"
    return None


def apply() -> None:
    global _active, _buckets_slot
    _buckets_slot = _slot("_buckets")
    _active = True


def is_active() -> bool:
    return _active
