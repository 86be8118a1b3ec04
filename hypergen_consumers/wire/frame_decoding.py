"""Decode a client's frame with bounded rules: plain JSON plus the few tagged values a page sends.

hypergen's own ``loads`` revives every tag it knows, ``range`` included: the 57-byte frame
``{"_": ["range", [0, 30000000]]}`` becomes a 30-million-item iterable that pydantic then
walks for a ``list[int]`` parameter, on the event loop, stalling every connection of the
process for seconds and taking 1.5 GB. Here what a frame can cost is bounded by its size:

- a tagged value ``{"_": [tag, value]}`` is revived only for the tags a hypergen page really
  sends: what hypergen's JS coercions produce (``float``, ``date``, ``datetime``, ``time``)
  and what hypergen's ``dumps`` writes for ``callback()`` arguments the page sends back
  unchanged (``tuple``, ``set``, ``frozenset``, ``deque``, and ``range``); collections are
  built from lists the frame spelled out, so they cost what their text costs;
- the ranges of one frame describe at most :data:`MAX_RANGE_LENGTH` items *together*: a cap
  per range alone let a 26 KB frame of many ranges (a ``list[list[int]]`` parameter) cost
  0.68 s and 337 MB. So a frame's items are at most its length plus that one budget,
  whatever the shape of the parameters;
- ``NaN``, ``Infinity`` and numbers that overflow to infinity are refused (the server would
  echo them, and no browser's ``JSON.parse`` reads them back);
- arrays and objects nest at most :data:`MAX_DEPTH` deep, checked before parsing.

Every refusal raises :class:`~hypergen_consumers.errors.Rejected` with ``invalid_frame``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import deque
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime, parse_time

from hypergen_consumers.errors import INVALID_FRAME, Rejected

__all__ = ["decode_frame", "MAX_DEPTH", "MAX_RANGE_LENGTH", "TAGS"]

#: How deep arrays and objects may nest in a client frame.
MAX_DEPTH = 32
#: The most items the ``range`` tags of one frame may describe together (a page sends one only
#: if a view put it in a callback).
MAX_RANGE_LENGTH = 10_000
_MAX_TEMPORAL_LENGTH = 64  # "2024-02-29T23:59:59.999999+14:00" is 32 characters

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _reject(message: str) -> Rejected:
    return Rejected(INVALID_FRAME, message[:300])


def _float(value: Any) -> float:
    if type(value) not in (int, float):
        raise _reject(f'{{"_": ["float", ...]}} takes a number, not {type(value).__name__}.')
    try:
        number = float(value)
    except OverflowError:
        raise _reject("A float in the frame is out of range.") from None
    if not math.isfinite(number):
        raise _reject("NaN and Infinity are not allowed in a frame.")
    return number


def _temporal(kind: str, parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def revive(value: Any) -> Any:
        if not isinstance(value, str) or len(value) > _MAX_TEMPORAL_LENGTH:
            raise _reject(f'{{"_": ["{kind}", ...]}} takes an ISO 8601 string.')
        try:
            parsed = parse(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise _reject(f"{value!r} is not a valid {kind}.")
        return parsed

    return revive


def _collection(kind: str, build: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
    def revive(value: Any) -> Any:
        if not isinstance(value, list):
            raise _reject(f'{{"_": ["{kind}", ...]}} takes a list.')
        try:
            return build(value)
        except TypeError as exc:  # a set of lists
            raise _reject(f"Cannot build a {kind} from the frame: {exc}.") from None

    return revive


class _RangeBudget:
    """The range items one frame may still describe (one budget per frame, not per range)."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_RANGE_LENGTH

    def take(self, value: Any) -> range:
        if not (isinstance(value, list) and 1 <= len(value) <= 3 and all(type(item) is int for item in value)):
            raise _reject('{"_": ["range", ...]} takes [start, stop, step] integers.')
        try:
            revived = range(*value)
        except ValueError as exc:  # step 0
            raise _reject(f"Bad range in the frame: {exc}.") from None
        try:
            self.left -= len(revived)
        except OverflowError:  # More items than an index holds: far past the budget.
            raise _reject(
                f"The ranges in the frame describe more than {MAX_RANGE_LENGTH} items together; "
                f"at most {MAX_RANGE_LENGTH} are accepted per frame."
            ) from None
        if self.left < 0:
            raise _reject(
                f"The ranges in the frame describe more than {MAX_RANGE_LENGTH} items together; "
                f"at most {MAX_RANGE_LENGTH} are accepted per frame."
            )
        return revived


def _range(value: Any) -> range:
    return _RangeBudget().take(value)


#: The tags revived in client frames, and how.
TAGS: dict[str, Callable[[Any], Any]] = {
    "float": _float,
    "date": _temporal("date", parse_date),
    "datetime": _temporal("datetime", parse_datetime),
    "time": _temporal("time", parse_time),
    "tuple": _collection("tuple", tuple),
    "set": _collection("set", set),
    "frozenset": _collection("frozenset", frozenset),
    "deque": _collection("deque", deque),
    "range": _range,
}


def _reviver(budget: list[_RangeBudget | None]) -> Callable[[dict[str, Any]], Any]:
    """The object hook of a thread's decoder: a frame's ranges draw on the one budget in
    ``budget`` (made at its first range, dropped when the frame is decoded)."""

    def revive(obj: dict[str, Any]) -> Any:
        tag = obj.get("_")
        if type(tag) is not list or len(tag) != 2:
            return obj
        kind, value = tag
        if kind == "range":
            frames_budget = budget[0]
            if frames_budget is None:
                frames_budget = budget[0] = _RangeBudget()
            return frames_budget.take(value)
        revive_tag = TAGS.get(kind) if isinstance(kind, str) else None
        if revive_tag is None:
            raise _reject(f"Unknown tagged value {str(kind)[:40]!r} in the frame; the tags are {sorted(TAGS)}.")
        return revive_tag(value)

    return revive


class _Decoders(threading.local):
    """Each thread's decoder, made once: ``json.loads`` with hooks builds a new decoder (and
    its scanner) for every call, a tenth of a small frame's whole handling."""

    def __init__(self) -> None:
        self.budget: list[_RangeBudget | None] = [None]
        self.decoder = json.JSONDecoder(
            object_hook=_reviver(self.budget), parse_constant=_refuse_constant, parse_float=_finite_float
        )


def _refuse_constant(name: str) -> Any:
    raise _reject(f"{name} is not allowed in a frame (JSON has no {name}).")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _reject(f"The number {text[:40]} is out of range for a float.")
    return number


_decoders = _Decoders()


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON ``text``, without recursing (strings skipped)."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(_STEP[char] for char in brackets), default=0)


def decode_frame(text: str) -> Any:
    """Parse a client frame; raise Rejected(invalid_frame) for anything outside the rules above."""
    could_nest_deeper = text.count("[") + text.count("{") > MAX_DEPTH  # cheap test for the common frame
    if could_nest_deeper and nesting_depth(text) > MAX_DEPTH:
        raise _reject(f"The frame nests arrays/objects more than {MAX_DEPTH} deep.")
    decoders = _decoders
    decoders.budget[0] = None  # A new frame: a new budget for its ranges.
    try:
        return decoders.decoder.decode(text)
    except Rejected:
        raise
    except (ValueError, RecursionError) as exc:
        raise _reject(f"Frame is not valid JSON: {type(exc).__name__}: {exc}") from None
    finally:
        decoders.budget[0] = None
