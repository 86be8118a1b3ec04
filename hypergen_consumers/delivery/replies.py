"""Sender-only replies, kept with the claim of the frame id that caused them.

A client frame with an id runs at most once per socket (see ``ClientFramesMixin._run_once``). What it
sends to the sender alone (a ``broadcast=False`` handler's output, ``send_commands``, an error
frame) goes through no group, so the replay window never holds it: were it lost on the way
down, the page would re-send the frame, the server would not run it again, and the answer
would be gone. So while a frame runs, what its connection sends is recorded with the frame's
id, and a duplicate of the id is answered with the recorded frames, in order, then the ack.

Bounded, with one rule past every bound: a record lives as long as its socket's claim
(``replay_seconds`` since the socket's last new frame); one id keeps at most
``REPLY_BYTES_PER_FRAME`` (more is recorded as "too large"); a socket keeps at most
``REPLY_IDS_PER_SOCKET`` ids and ``REPLY_BYTES_PER_SOCKET`` (the oldest ids go first); the
in-memory store keeps at most ``MEMORY_TOTAL_BYTES`` for the whole process (the least recently
used sockets lose their records). A duplicate whose record is gone, too large, or still
pending after the handler's timeout gets ``hypergen.websocket.resync``: the page learns that
it missed an answer, and reloads (or the consumer's ``on_resync`` re-renders).

Two stores, one contract: :class:`MemoryReplies` (the in-memory layer) and
:class:`RedisReplies` (channels-redis: one hash per socket in the layer's Redis, next to the
replay streams, so a page that re-sends to another process gets its answer there too).
Each channel layer has one store, and one in-process fallback, kept by its backend
(``layers.backend``).
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypergen_consumers.layers.keys import key_prefix
from hypergen_consumers.layers.redis_client import LoopClients

__all__ = [
    "PENDING",
    "TOO_LARGE",
    "MISSING",
    "ReplyStore",
    "MemoryReplies",
    "RedisReplies",
    "encode_record",
]

#: A record is one of these three markers, or the JSON list of the frames sent (text).
PENDING = "?"  # Claimed, still running (or its process died while running it).
TOO_LARGE = "!"  # Its replies were larger than REPLY_BYTES_PER_FRAME: not kept.
MISSING = ""  # Never recorded here, trimmed away, or expired.

REPLY_BYTES_PER_FRAME = 64 * 1024
REPLY_BYTES_PER_SOCKET = 256 * 1024
REPLY_IDS_PER_SOCKET = 100
MEMORY_TOTAL_BYTES = 64 * 1024 * 1024
_MAX_SOCKETS_BEFORE_PURGE = 10_000


def encode_record(frames: list[str]) -> str:
    """The record of what a frame's run sent: its frames as a JSON list, or TOO_LARGE."""
    if sum(len(text) for text in frames) > REPLY_BYTES_PER_FRAME:
        return TOO_LARGE
    record = json.dumps(frames)
    return TOO_LARGE if len(record) > REPLY_BYTES_PER_FRAME else record


class ReplyStore(Protocol):
    async def claim(
        self, key: str, frame_id: int, seconds: float, earlier: tuple[int, str] | None = None
    ) -> tuple[bool, str]:
        """``(True, "")`` if ``frame_id`` is newer than any id socket ``key`` ran (run it; it is
        now PENDING), else ``(False, its record)``. ``earlier``: an earlier id's record, written
        first in the same call (see ``frame_ids``)."""
        ...

    async def recorded(self, key: str, frame_id: int) -> str: ...

    async def record(self, key: str, frame_id: int, record: str, seconds: float) -> None: ...

    async def size(self, key: str) -> tuple[int, int]:
        """``(ids, bytes)`` socket ``key`` keeps: what the bounds above hold to."""
        ...


# --- in the process -----------------------------------------------------------------


@dataclass
class _Socket:
    highest: int = 0
    touched: float = 0.0
    size: int = 0
    records: dict[int, str] = field(default_factory=dict)  # By id: claims only grow, and an update keeps its place.
    #: The ids claimed here, the latest CLAIMS_KEPT of them, and the highest id forgotten from
    #: that list: as a fallback store (frame_ids), it must know exactly which ids it ran, not
    #: only the highest (an earlier id may have been claimed in Redis).
    claims: dict[int, None] = field(default_factory=dict)
    forgotten: int = 0


#: Ids remembered exactly per socket (older ones count as claimed here up to the highest forgotten).
CLAIMS_KEPT = 1024


class MemoryReplies:
    """Claims and replies of the in-memory layer's sockets, in this process."""

    in_process = True  # Answers at once: no timeout around its calls (layers.bounded_store).

    def __init__(self) -> None:
        self._sockets: collections.OrderedDict[str, _Socket] = collections.OrderedDict()  # Least recently used first.
        self.total = 0

    def _socket(self, key: str, seconds: float) -> _Socket:
        now = time.monotonic()
        socket = self._sockets.get(key)
        if socket is None or socket.touched < now - seconds:
            if socket is not None:
                self.total -= socket.size
            socket = self._sockets[key] = _Socket()
            if len(self._sockets) > _MAX_SOCKETS_BEFORE_PURGE:
                self._purge(now - seconds)
        socket.touched = now
        self._sockets.move_to_end(key)
        return socket

    def _purge(self, oldest: float) -> None:
        for key in [key for key, socket in self._sockets.items() if socket.touched < oldest]:
            self.total -= self._sockets.pop(key).size

    def _put(self, socket: _Socket, frame_id: int, record: str) -> None:
        grown = len(record) - len(socket.records.get(frame_id, ""))
        socket.records[frame_id] = record
        socket.size += grown
        self.total += grown
        if len(socket.records) > REPLY_IDS_PER_SOCKET or socket.size > REPLY_BYTES_PER_SOCKET:
            # Down to three quarters, oldest ids first: trimming is then rare, not per frame.
            while socket.records and (
                len(socket.records) > REPLY_IDS_PER_SOCKET * 3 // 4 or socket.size > REPLY_BYTES_PER_SOCKET * 3 // 4
            ):
                self._drop(socket, next(iter(socket.records)))
        for other in self._sockets.values():  # Least recently used first.
            if self.total <= MEMORY_TOTAL_BYTES:
                break
            while other.records and self.total > MEMORY_TOTAL_BYTES:
                self._drop(other, next(iter(other.records)))

    def _drop(self, socket: _Socket, frame_id: int) -> None:
        size = len(socket.records.pop(frame_id))
        socket.size -= size
        self.total -= size

    async def claim(
        self, key: str, frame_id: int, seconds: float, earlier: tuple[int, str] | None = None
    ) -> tuple[bool, str]:
        if earlier is not None:
            await self.record(key, *earlier, seconds)
        socket = self._socket(key, seconds)
        if frame_id <= socket.highest:
            return False, socket.records.get(frame_id, MISSING)
        socket.highest = frame_id
        socket.claims[frame_id] = None
        if len(socket.claims) > CLAIMS_KEPT:
            socket.forgotten = max(socket.forgotten, _pop_oldest(socket.claims))
        self._put(socket, frame_id, PENDING)
        return True, MISSING

    async def recorded(self, key: str, frame_id: int) -> str:
        socket = self._sockets.get(key)
        return MISSING if socket is None else socket.records.get(frame_id, MISSING)

    async def record(self, key: str, frame_id: int, record: str, seconds: float) -> None:
        socket = self._sockets.get(key)
        if socket is not None and frame_id in socket.records:  # Else trimmed meanwhile: stays missing.
            self._put(socket, frame_id, record)

    async def size(self, key: str) -> tuple[int, int]:
        socket = self._sockets.get(key)
        return (0, 0) if socket is None else (len(socket.records), socket.size)

    def claimed(self, key: str, frame_id: int) -> bool:
        """Whether socket ``key`` claimed ``frame_id`` here (the fallback's question, see ``frame_ids``)."""
        socket = self._sockets.get(key)
        return socket is not None and (frame_id in socket.claims or frame_id <= socket.forgotten)


def _pop_oldest(claims: dict[int, None]) -> int:
    oldest = next(iter(claims))
    del claims[oldest]
    return oldest


# --- in Redis (channels-redis) --------------------------------------------------------

# One hash per socket: "h" the highest id run, "b" the bytes kept, a field per kept id.
# Trimmed (oldest ids first, down to three quarters) when over either bound.
_TRIM = """
local function trim(key, max_ids, max_bytes)
  local count = redis.call('HLEN', key) - 2
  local bytes = tonumber(redis.call('HGET', key, 'b') or '0')
  if count <= max_ids and bytes <= max_bytes then return end
  local ids = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if tonumber(name) then table.insert(ids, name) end
  end
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
  local i = 1
  while (count > math.floor(max_ids * 3 / 4) or bytes > math.floor(max_bytes * 3 / 4)) and i <= #ids do
    bytes = bytes - redis.call('HSTRLEN', key, ids[i])
    redis.call('HDEL', key, ids[i])
    count, i = count - 1, i + 1
  end
  redis.call('HSET', key, 'b', bytes)
end
"""

# KEYS: the socket's hash. ARGV: frame id, milliseconds, max ids, max bytes, an earlier id and its record ('' '': none).
_CLAIM = (
    _TRIM
    + """
if ARGV[5] ~= '' then  -- The socket's previous frame's record, carried by this claim (frame_ids).
  local old = redis.call('HGET', KEYS[1], ARGV[5])
  if old then
    redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
    redis.call('HINCRBY', KEYS[1], 'b', string.len(ARGV[6]) - string.len(old))
  end
end
local highest = tonumber(redis.call('HGET', KEYS[1], 'h') or '0')
if tonumber(ARGV[1]) <= highest then
  return {0, redis.call('HGET', KEYS[1], ARGV[1]) or ''}
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], ARGV[1], '"""
    + PENDING
    + """')
redis.call('HINCRBY', KEYS[1], 'b', 1)
trim(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ''}
"""
)

# KEYS: the socket's hash. ARGV: frame id, record, milliseconds, max ids, max bytes.
_RECORD = (
    _TRIM
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'b', string.len(ARGV[2]) - string.len(old))
trim(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)


class RedisReplies:
    """Claims and replies in the channel layer's Redis, through the replay window's clients."""

    pooled = True  # Its calls count against the process's share of Redis connections (layers.bounded).

    def __init__(self, clients: LoopClients, layer_prefix: str) -> None:
        self._clients = clients
        self._keys = key_prefix(layer_prefix, "replies")  # Under the layer's prefix.

    async def claim(
        self, key: str, frame_id: int, seconds: float, earlier: tuple[int, str] | None = None
    ) -> tuple[bool, str]:
        keys = [self._keys + key]
        args = [frame_id, int(seconds * 1000), REPLY_IDS_PER_SOCKET, REPLY_BYTES_PER_SOCKET, *(earlier or ("", ""))]
        run, record = await self._clients.script(_CLAIM)(keys=keys, args=args)
        return bool(int(run)), _text(record)

    async def recorded(self, key: str, frame_id: int) -> str:
        return _text(await self._clients.client().hget(self._keys + key, str(frame_id)) or b"")

    async def record(self, key: str, frame_id: int, record: str, seconds: float) -> None:
        keys = [self._keys + key]
        args = [frame_id, record, int(seconds * 1000), REPLY_IDS_PER_SOCKET, REPLY_BYTES_PER_SOCKET]
        await self._clients.script(_RECORD)(keys=keys, args=args)

    async def size(self, key: str) -> tuple[int, int]:
        pipe = self._clients.client().pipeline(transaction=False)
        ids, size = await pipe.hlen(self._keys + key).hget(self._keys + key, "b").execute()
        return max(0, int(ids) - 2), int(size or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
