"""Replay windows: every frame sent to a group gets a position in that group's stream.

A page that reconnects says where it was (``?hypergen_position=...``) and is sent what it
missed, once each and in order, before live frames. Each stored frame also records the
position before it (``prev``), so a gap (frames trimmed away, a Redis that lost its data, a
process restarted) is seen, never papered over: past the window the page is told to resync.

Two stores, one contract: :class:`MemoryWindow` (the in-memory layer: one process) and
:class:`RedisWindow` (channels-redis, both layers: one stream per group in the layer's own
Redis, ``XADD`` trimmed by length and by age, so any process can replay it).
Positions are ``"<milliseconds>-<sequence>"`` in both, so they compare the same way. Each
channel layer has one window, kept by its backend (``layers.backend``).
"""

from __future__ import annotations

import collections
import heapq
import json
import time
from dataclasses import dataclass
from typing import Any

from hypergen_consumers.layers.calls import FRAME_EVENT
from hypergen_consumers.layers.keys import DEFAULT_LAYER_PREFIX, key_prefix
from hypergen_consumers.layers.redis_client import LoopClients

__all__ = [
    "continues",
    "Entry",
    "MemoryWindow",
    "RedisWindow",
    "remember_group",
    "window_settings",
    "newer",
    "position_key",
]

DEFAULT_REPLAY_FRAMES = 200
DEFAULT_REPLAY_SECONDS = 120
#: How long a group's last position is kept after its frames expired: long enough that an
#: idle page reconnecting later is known to have missed nothing (and is not reloaded).
LAST_POSITION_SECONDS = 24 * 3600
#: In memory, the last positions of at most this many groups are kept (the least recently used go).
MEMORY_LAST_POSITIONS = 100_000


@dataclass(frozen=True)
class Entry:
    position: str
    prev: str
    message: dict[str, Any]


def newer(a: str, b: str) -> bool:
    """True when position ``a`` comes after ``b`` (``""`` is before everything)."""
    return position_key(a) > position_key(b)


def continues(entries: list[Entry], position: str) -> bool:
    """Do ``entries`` follow ``position`` without a gap?

    Yes when the first one's ``prev`` is ``position``. Also when the first one starts a
    history (``prev`` empty) after ``position``: the store lost the older history (a Redis
    restart without persistence, a restarted process), and everything since is all there is.
    """
    if not entries:
        return False
    first = entries[0]
    return first.prev == position or (first.prev == "" and newer(first.position, position))


def position_key(position: str) -> tuple[int, int]:
    """A position as numbers, to sort by (positions of one store share one clock)."""
    if not position:
        return (-1, -1)
    ms, _, seq = position.partition("-")
    return (int(ms), int(seq or 0))


# --- which window settings a group uses -------------------------------------------

_group_settings: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
_MAX_REMEMBERED_GROUPS = 100_000


def remember_group(group: str, consumer_class: Any) -> None:
    """Record the replay settings of the consumer whose group this is (at lookup and connect),
    so ``consumer_command(ChatRoom.group_name(...), ...)`` knows the window to keep."""
    _group_settings[group] = (
        int(getattr(consumer_class, "replay_frames", DEFAULT_REPLAY_FRAMES)),
        float(getattr(consumer_class, "replay_seconds", DEFAULT_REPLAY_SECONDS)),
    )
    _group_settings.move_to_end(group)
    if len(_group_settings) > _MAX_REMEMBERED_GROUPS:
        _group_settings.popitem(last=False)


def window_settings(group: str) -> tuple[int, float]:
    """``(frames, seconds)`` for ``group``; the defaults for a group no consumer class named."""
    return _group_settings.get(group, (DEFAULT_REPLAY_FRAMES, DEFAULT_REPLAY_SECONDS))


# --- the in-process window ----------------------------------------------------------


class MemoryWindow:
    """The window of the in-memory layer: a deque per group, in this process only."""

    in_process = True  # Answers at once: no timeout around its calls (layers.bounded_store).

    def __init__(self) -> None:
        self._frames: dict[str, collections.deque[tuple[Entry, float]]] = {}
        #: Each group's last position, kept after its frames (see LAST_POSITION_SECONDS), least
        #: recently used first and at most MEMORY_LAST_POSITIONS of them.
        self._last: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._last_key = (0, 0)
        self._starts: dict[str, tuple[str, float]] = {}
        #: When each group's frames are due to be freed; the heap has one entry per such group.
        self._frames_until: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []
        #: The newest last position forgotten by the bound above: a page holding a position up
        #: to it, of a group this window no longer knows, may have missed frames.
        self._forgotten_up_to = ""

    def _next_position(self) -> str:
        ms, seq = int(time.time() * 1000), 0
        if ms <= self._last_key[0]:
            ms, seq = self._last_key[0], self._last_key[1] + 1
        self._last_key = (ms, seq)
        return f"{ms}-{seq}"

    async def append(self, group: str, message: dict[str, Any], frames: int, seconds: float) -> tuple[str, str]:
        now = time.monotonic()
        self._free_silent(now)
        position, prev = self._next_position(), self._last.get(group, "")
        kept = self._frames.setdefault(group, collections.deque(maxlen=frames))
        kept.append((Entry(position, prev, message), now))
        self._trim(kept, seconds)
        self._last[group] = position
        self._last.move_to_end(group)
        if len(self._last) > MEMORY_LAST_POSITIONS:
            self._forget_least_recent()
        if group not in self._frames_until:
            heapq.heappush(self._due, (now + seconds, group))
        self._frames_until[group] = now + seconds
        return position, prev

    def _forget_least_recent(self) -> None:
        """Forget the least recently used group's last position, and its frames with it: a
        page of that group coming back resyncs (see ``read_after``), it is never told it is
        caught up while frames it missed are gone from view."""
        group, position = self._last.popitem(last=False)
        self._frames.pop(group, None)
        self._frames_until.pop(group, None)
        if newer(position, self._forgotten_up_to):
            self._forgotten_up_to = position

    def _free_silent(self, now: float) -> None:
        """Free the frames of groups silent for their ``replay_seconds``.

        A window used to be trimmed only when its own group was touched again, so every room
        anyone opened kept its frames for good (measured: +115 MB per 100 rooms of 200 x 5 KB
        frames, with ``replay_seconds = 5``). Each group has one entry in a heap ordered by
        when it is next due; an entry found early (the group spoke since) is put back for its
        new time. Cost: amortised O(log groups) per frame.
        """
        due = self._due
        while due and due[0][0] <= now:
            _, group = heapq.heappop(due)
            until = self._frames_until.get(group)
            if until is None:
                continue  # Forgotten with its last position (_forget_least_recent).
            if until <= now:
                del self._frames_until[group]
                del self._frames[group]
            else:
                heapq.heappush(due, (until, group))

    def held_groups(self) -> int:
        """How many groups' frames this window holds (for tests and bench/)."""
        return len(self._frames)

    @staticmethod
    def _trim(kept: collections.deque[tuple[Entry, float]], seconds: float) -> None:
        oldest = time.monotonic() - seconds
        while kept and kept[0][1] < oldest:
            kept.popleft()

    async def last(self, group: str) -> str:
        return self._last.get(group, "")

    async def read_after(self, group: str, position: str, seconds: float) -> tuple[list[Entry] | None, str]:
        """``(frames after position in order, or None when some are gone; the last position)``.

        Both read at once: a frame stored after this read follows the returned last position.
        """
        last = self._last.get(group, "")
        kept = self._frames.get(group)
        if not last and position and not newer(position, self._forgotten_up_to):
            return None, last  # Forgotten (MEMORY_LAST_POSITIONS): whatever it missed is gone from view.
        if position == last or not last:
            return [], last  # Caught up, or no history since this process started.
        if kept is None:
            return None, last  # Its frames were freed after the group fell silent: missed for good.
        self._trim(kept, seconds)
        entries = [entry for entry, _ in kept if newer(entry.position, position)]
        return (entries if continues(entries, position) else None), last

    async def start(self, key: str, group: str, seconds: float) -> str:
        """Where socket ``key`` starts in ``group``: the last position when it first connected.

        Remembered, so a page whose first connection died before the position reached it
        starts its next one there too (and misses nothing sent in between)."""
        now = time.monotonic()
        self._free_silent(now)
        started = self._starts.get(key)
        if started is None or started[1] < now - seconds:
            started = self._starts[key] = (self._last.get(group, ""), now)
            if len(self._starts) > 10_000:
                self._starts = {k: v for k, v in self._starts.items() if v[1] > now - seconds}
        return started[0]


# --- the Redis window (channels-redis) ----------------------------------------------

# KEYS: stream, last position. ARGV: max frames, seconds, stored value, last-position ttl, its field (_stored).
_APPEND = """
local prev = redis.call('GET', KEYS[2]) or ''
local position = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', prev, ARGV[5], ARGV[3])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2]) * 1000
redis.call('XTRIM', KEYS[1], 'MINID', '~', oldest)
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
redis.call('SET', KEYS[2], position, 'EX', ARGV[4])
return {position, prev}
"""

# KEYS: the socket's start, the group's last position. ARGV: seconds.
_START = """
redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]) or '', 'NX', 'EX', ARGV[1])
return redis.call('GET', KEYS[1])
"""


class RedisWindow:
    """One Redis stream per group in the channel layer's own Redis (its first host), under
    the layer's prefix (``<prefix>:hc:replay:<group>``, see ``keys``)."""

    pooled = True  # Its calls count against the process's share of Redis connections (layers.bounded).

    def __init__(self, clients: LoopClients, layer_prefix: str = DEFAULT_LAYER_PREFIX) -> None:
        self._clients = clients  # Shared with the layer's reply store (see layers.backend).
        self._keys = key_prefix(layer_prefix, "replay")

    async def append(self, group: str, message: dict[str, Any], frames: int, seconds: float) -> tuple[str, str]:
        keys = [self._keys + group, self._keys + group + ":last"]
        field, value = _stored(message)
        args = [frames, seconds, value, LAST_POSITION_SECONDS, field]
        position, prev = await self._clients.script(_APPEND)(keys=keys, args=args)
        return _text(position), _text(prev)

    async def last(self, group: str) -> str:
        return _text(await self._clients.client().get(self._keys + group + ":last") or b"")

    async def read_after(self, group: str, position: str, seconds: float) -> tuple[list[Entry] | None, str]:
        """As MemoryWindow.read_after: the frames up to the last position read first."""
        last = await self.last(group)
        if position == last or not last:
            return [], last  # Caught up, or Redis lost its data (a restart without persistence).
        start = f"({position}" if position else "-"
        raw = await self._clients.client().xrange(self._keys + group, min=start, max=last)
        entries = [Entry(_text(position_), _text(fields[b"p"]), _message(fields)) for position_, fields in raw]
        if entries and entries[-1].position != last:
            return None, last
        return (entries if continues(entries, position) else None), last

    async def start(self, key: str, group: str, seconds: float) -> str:
        """Where socket ``key`` starts in ``group`` (see MemoryWindow.start), in every process."""
        keys, args = [self._keys + "start:" + key, self._keys + group + ":last"], [max(1, int(seconds))]
        return _text(await self._clients.script(_START)(keys=keys, args=args))


def _stored(message: dict[str, Any]) -> tuple[str, str]:
    """How a group frame is kept in a stream entry: ``("t", its text)`` for a plain encoded frame
    (most frames), else ``("m", the message as JSON)``.

    The text of a frame is already JSON; encoding the message around it again escaped every
    quote and added its event type's name: a stored frame took 2.5 times the bytes of the
    frame itself (bench/scale.py, storage).
    """
    if message.get("type") == FRAME_EVENT and message.keys() == {"type", "text"}:
        return "t", message["text"]
    return "m", json.dumps(message)


def _message(fields: dict[bytes, bytes]) -> dict[str, Any]:
    text = fields.get(b"t")
    if text is not None:
        return {"type": FRAME_EVENT, "text": text.decode()}
    message: dict[str, Any] = json.loads(fields[b"m"])
    return message


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
