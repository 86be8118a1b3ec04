"""Non-finite numbers: refused in what a handler is given, never in what the server sends.

JSON has no ``NaN`` or ``Infinity``: no browser's ``JSON.parse`` reads them, so one such value
in a broadcast costs every member that frame and its position, and the sender's page re-sends
the frame after every reconnect. They get in three ways, each closed:

- as JSON literals (``NaN``, ``1e999``): the frame decoder refuses them (``frame_decoding``);
- as strings pydantic's lax mode turns into floats (``"nan"``, ``"inf"``, ``"-infinity"``,
  ``"1e999"``): a handler's arguments model refuses them (``allow_inf_nan=False``), and, for
  models of the user's own that allow them, :func:`non_finite_errors` finds them after
  validation (``validation_error``, pydantic's ``finite_number`` entry);
- from a handler's own arithmetic: every frame is encoded with ``allow_nan=False``
  (``outgoing.encode``), so the sender gets ``handler_error`` and nobody gets the frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

__all__ = ["non_finite_errors", "FINITE_NUMBER"]

#: pydantic's own error type for this, so a page handles both the same way.
FINITE_NUMBER = "finite_number"
_SCALARS = (str, int, bool, type(None), bytes, range)
_MAX_DEPTH = 64  # Decoded frames nest at most 32 deep (frame_decoding.MAX_DEPTH).


def _first_non_finite(value: Any, loc: tuple[Any, ...], depth: int) -> tuple[Any, ...] | None:
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else loc
    if kind in _SCALARS or depth > _MAX_DEPTH:
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else loc
    if isinstance(value, Decimal):
        return None if value.is_finite() else loc
    if isinstance(value, complex):
        return None if math.isfinite(value.real) and math.isfinite(value.imag) else loc
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple, deque)):
        items = enumerate(value)
    elif isinstance(value, (set, frozenset)):
        items = ((index, item) for index, item in enumerate(value))
    elif isinstance(value, BaseModel):
        items = value.__dict__.items()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((field.name, getattr(value, field.name, None)) for field in dataclasses.fields(value))
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, (*loc, key), depth + 1)
        if found is not None:
            return found
    return None


def non_finite_errors(values: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """pydantic-style errors for each ``(parameter, validated value)`` that holds NaN or infinity."""
    errors = []
    for name, value in values:
        loc = _first_non_finite(value, (name,), 0)
        if loc is not None:
            errors.append({"type": FINITE_NUMBER, "loc": list(loc), "msg": "Input should be a finite number"})
    return errors
