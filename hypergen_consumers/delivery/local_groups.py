"""One subscription per process per group: the layer delivers a group's message to the process
once, and the process hands it to its local members.

Channels' way is one layer channel per connection in every group it joins, so a broadcast to
500 members is 500 layer messages: 500 queue puts and wake-ups in memory; over channels-redis
a ``ZRANGE`` returning 500 names and a payload listing them to every process, which its
receive loop splits again into 500 local messages. Here a process joins each group once, with
a channel of its own for that group (a :class:`Tap`); the tap's task receives each message
once and puts it in each local member's inbox (``lifecycle``: the in-process queue that the
connection reads beside the server and the layer). So a broadcast costs the layer one message
per process, whatever the group's size, and each member still handles it in its own task, in
turn with its other messages: positions, catch-up and ``broadcast="others"`` work per member
as before (``catchup``), and a member that is slow to send holds up no one else.

Direct delivery: an encoded frame (``FRAME_EVENT``: a broadcast, ``consumer_command``) is
written by the tap itself to each member whose :class:`Turn` is free, that is, whose task is
handling nothing, whose inbox holds nothing and whose socket has no write waiting, with the
same checks the member's own task makes (``group_frames``: the frame follows the
member's position, ``broadcast="others"``): no queue, task wake-up or ``dispatch`` per member,
and the text with its position is made once per stream index, not once per member. A member
that is busy gets the frame in its inbox, in turn, as before; anything else (a handler run,
a catch-up, a user's own event) always goes through the inbox. A socket's sends go one at a
time, from whichever task (``Turn.lock``): a write the server makes wait (uvicorn: the
socket's buffer is full) finishes in a task of its own, and until then the member takes its
frames in turn, so the tap waits for no one and writes to no socket whose send waits.

Order: a tap is the only reader of its channel and hands each message to every member before
taking the next, so every member gets one group's messages in the layer's order; a member's
inbox is first in, first out, and the tap writes directly only to a member with nothing
queued or running, so a direct frame never overtakes one in the inbox or a send of the
member's own. A member whose inbox holds the layer's ``capacity`` already (a client not
reading, under a server that makes ``send`` wait) misses what comes meanwhile, as a full
layer channel would, and catches up from the replay window once it has read what waits. Its
own client cannot put it there: while half that waits, the member reads its client's next
frame only after handling some (``Turn.room_for_client``), so a sender's own broadcasts,
which come back to its inbox while it handles the next, do not crowd out its room's frames.

Membership ends with the connection however it ends (``lifecycle._leave_groups`` runs in a
``finally``); the last local member's leaving takes the process out of the group. After a
layer outage, ``recovery`` re-joins each tap to its group (taps are tracked like connections).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

from hypergen_consumers.connection.fair_lock import FairLock
from hypergen_consumers.connection.resumed import Resumed
from hypergen_consumers.delivery.streams import positions_frame, with_position
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import FRAME_EVENT, RUN_EVENT, retried

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import Member

__all__ = ["Tap", "Turn", "GroupRelay", "relay_for", "join", "leave", "local_members", "put_in_inbox"]

logger = logging.getLogger("hypergen_consumers")

#: Our own events, which no member changes: all members share one dict. Any other event (a
#: user's own ``group_send`` to an event method) is copied per member, as a layer would.
_SHARED_EVENTS = frozenset({FRAME_EVENT, RUN_EVENT})


class Turn:
    """Whether a tap may write a frame to one member's socket now (see "Direct delivery").

    ``lifecycle`` marks the member's task while it handles a message (``handling``) and
    counts what waits in its inbox (``queued``: put, and not handled to its end yet).
    """

    __slots__ = ("handling", "queued", "taken", "lock", "writing", "off", "limit", "_room")

    def __init__(self, limit: int | None = None) -> None:
        self.handling = False
        self.queued = 0
        #: Held by each send of the socket, from any task (``sending``): while one waits for
        #: the socket, the next waits for it, and no tap writes.
        self.lock = FairLock()
        #: The inbox message the member's task took and has not finished handling.
        self.taken: dict[str, Any] | None = None
        #: A direct write the server made wait, finishing in this task (it holds ``lock``).
        self.writing: asyncio.Task[None] | None = None
        #: A direct write failed (the socket is going): the member's own task takes the rest.
        self.off = False
        #: The member reads its client's next frame only while fewer than this wait in its
        #: inbox (see ``room_for_client``); None: no bound.
        self.limit = limit
        self._room: asyncio.Future[None] | None = None

    def free(self) -> bool:
        return not (self.handling or self.queued or self.lock.locked() or self.writing or self.off)

    def handled(self, message: dict[str, Any]) -> None:
        """The member's task finished handling ``message`` (from any of its sources)."""
        self.handling = False
        if message is self.taken:
            self.taken = None
            self.queued -= 1
            room = self._room
            if room is not None and self.limit is not None and self.queued < self.limit:
                self._room = None
                if not room.done():
                    room.set_result(None)

    async def room_for_client(self) -> None:
        """Return once the member's inbox holds fewer than ``limit`` messages.

        Why: a client sending broadcasts as fast as it can gets each of them back (and its
        room's others) in its inbox while its task handles the next one; reading its frames
        regardless, its own output filled the inbox to the layer's capacity, the member missed
        group frames, and past the replay window its page was told to reload. Waiting here
        leaves the client's frames with the server (and TCP) instead, so a sender's own frames
        never cost it its inbox; the wait is bounded, since a tap puts at most the layer's
        capacity there.
        """
        while self.limit is not None and self.queued >= self.limit:
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await self._room


def put_in_inbox(member: Any, message: dict[str, Any]) -> None:
    """Queue ``message`` for ``member``'s own task, in turn with what waits there."""
    socket = member._hc.socket
    socket.inbox.put_nowait(message)
    turn = socket.turn
    if turn is not None:
        turn.queued += 1


def _write_now(member: Any, turn: Turn, message: dict[str, Any], texts: dict[int, str]) -> bool:
    """Send the frame ``message`` to ``member`` from here, as its own task would (``sending``,
    ``GroupFramesMixin._on_group_event``); False: the member's task takes it (``texts``: per stream index)."""
    stream, before = None, None
    if "position" in message:
        group = message.get("group")
        for candidate in member._hc.delivery.streams:
            if candidate.group == group:
                stream = candidate
                break
    if stream is not None:
        if message["prev"] != stream.position:
            return False  # Missed or already sent: the member's task catches up or skips it.
        before, stream.position = stream.position, message["position"]
        socket = message.get("exclude_socket")
        if message.get("exclude") == member.channel_name or (
            socket is not None and socket == member._hc.delivery.socket_key
        ):
            text = positions_frame([stream])  # broadcast="others": skipped, but counted.
        else:
            text = texts.get(stream.index) or texts.setdefault(
                stream.index, with_position(message["text"], stream.position, stream.index)
            )
    elif message.get("exclude") == member.channel_name:
        return True  # broadcast="others": the sender does not get its own output.
    else:
        text = message["text"]
    sending = member.send(text_data=text)
    try:
        waited = sending.send(None)
    except StopIteration:
        return True  # Written (daphne's send never waits; uvicorn's waits only on a full buffer).
    except Exception as exc:
        sending.close()
        if stream is not None and before is not None:
            stream.position = before  # The member's own task sends it (and meets the error itself).
        turn.off = True
        logger.debug("%s: a direct send failed (%s); its own task takes its frames", type(member).__name__, exc)
        return False
    turn.writing = task = asyncio.get_running_loop().create_task(_finish(Resumed(sending, waited)))
    task.add_done_callback(partial(_written, turn))
    return True


async def _finish(resumed: Resumed) -> None:
    try:
        await resumed
    except Exception as exc:
        logger.debug("a direct send failed (%s); the connection is ending", exc)


def _written(turn: Turn, task: asyncio.Task[None]) -> None:
    if turn.writing is task:
        turn.writing = None


class Tap:
    """This process's one member of one group: a layer channel and the task that reads it."""

    def __init__(self, relay: GroupRelay, group: str, channel: str) -> None:
        self.relay = relay
        self.group = group
        self.channel_name = channel
        self.channel_layer = relay.layer
        self.members: dict[Any, None] = {}  # Insertion-ordered; a dict, so leaving is O(1).
        self.task: asyncio.Task[None] | None = None

    @property
    def _joined(self) -> list[str]:
        """What recovery re-adds after an outage (as for a connection): this tap to its group."""
        return [self.group]

    def request_catch_up(self) -> bool:
        """Recovery asks every member to catch up; the connections behind this tap do that themselves."""
        return True

    async def run(self) -> None:
        """Receive each message of the group once and put it in every local member's inbox."""
        layer, channel = self.relay.layer, self.channel_name
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "group %r: channel layer receive failed (%s: %s); retrying once the layer answers",
                    self.group,
                    type(exc).__name__,
                    exc,
                )
                health = backend_for(layer).health
                await health.wait_recovered(health.mark_failed())
                continue
            self.hand_out(message)

    def hand_out(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        shared, direct = kind in _SHARED_EVENTS, kind == FRAME_EVENT
        texts: dict[int, str] = {}  # The frame with its position, once per stream index.
        bound = self.relay.inbox_bound
        for member in list(self.members):
            socket = member._hc.socket
            inbox = socket.inbox
            if inbox is None:
                continue
            turn = socket.turn
            if direct and turn is not None and turn.free() and _write_now(member, turn, message, texts):
                continue
            if bound is not None and inbox.qsize() >= bound:
                self.relay.overflowed(member)
                continue
            put_in_inbox(member, message if shared else dict(message))


class GroupRelay:
    """This process's taps on one channel layer, one per group that has local members."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.taps: dict[str, Tap] = {}
        self.locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        capacity = getattr(layer, "capacity", None)
        #: Events a member's inbox may hold before it misses group messages (the layer's own bound).
        self.inbox_bound: int | None = capacity if isinstance(capacity, int) and capacity > 0 else None

    def _lock(self, group: str) -> tuple[asyncio.Lock, list[int]]:
        entry = self.locks.get(group)
        if entry is None:
            entry = self.locks[group] = (asyncio.Lock(), [0])
        return entry

    async def join(self, group: str, member: Any) -> None:
        """Add ``member`` to ``group``: the process joins the group first if it is its first local member."""
        lock, users = self._lock(group)
        users[0] += 1
        try:
            async with lock:
                tap = self.taps.get(group)
                if tap is None:
                    channel = await self.layer.new_channel()
                    await retried(partial(self.layer.group_add, group, channel), self.layer)
                    tap = self.taps[group] = Tap(self, group, channel)
                    tap.task = self.loop.create_task(tap.run())
                    backend_for(self.layer).health.track(tap)
                tap.members[member] = None  # Under the lock: a leave cannot discard the tap meanwhile.
        finally:
            self._release(group, users)

    async def leave(self, group: str, member: Any) -> None:
        """Take ``member`` out of ``group`` at once; the last one takes the process out of the group."""
        tap = self.taps.get(group)
        if tap is None or member not in tap.members:
            return
        del tap.members[member]
        if tap.members:
            return
        lock, users = self._lock(group)
        users[0] += 1
        try:
            async with lock:
                if self.taps.get(group) is not tap or tap.members:
                    return  # Someone joined meanwhile.
                del self.taps[group]
                backend_for(self.layer).health.untrack(tap)
                if tap.task is not None:
                    tap.task.cancel()
                try:
                    await retried(partial(self.layer.group_discard, group, tap.channel_name), self.layer)
                except Exception as exc:
                    # Owed: left after the next rejoin pass (recovery), not a day later by group_expiry.
                    backend_for(self.layer).health.owe_discard(group, tap.channel_name)
                    logger.warning("could not take this process out of group %r yet (%s)", group, type(exc).__name__)
        finally:
            self._release(group, users)

    def _release(self, group: str, users: list[int]) -> None:
        users[0] -= 1
        if users[0] == 0 and group not in self.taps:
            self.locks.pop(group, None)

    def overflowed(self, member: Any) -> None:
        """``member``'s inbox is full: it misses this message, and catches up from the replay
        window once it has read what waits (a catch-up request queued behind it, once)."""
        member.request_catch_up()
        if not member._hc.socket.inbox_overflowed:
            member._hc.socket.inbox_overflowed = True
            logger.warning(
                "%s: %d messages wait for this connection (the layer's capacity); it misses group "
                "messages until it reads again, then catches up from the replay window",
                type(member).__name__,
                self.inbox_bound,
            )


_relays: weakref.WeakKeyDictionary[Any, GroupRelay] = weakref.WeakKeyDictionary()


def relay_for(layer: Any) -> GroupRelay:
    """This process's relay for ``layer`` on the running event loop (a new loop starts afresh)."""
    relay = _relays.get(layer)
    if relay is None or relay.loop is not asyncio.get_running_loop():
        relay = _relays[layer] = GroupRelay(layer)
    return relay


async def join(connection: Member, group: str) -> None:
    await relay_for(connection.channel_layer).join(group, connection)


async def leave(connection: Member, group: str) -> None:
    relay = _relays.get(connection.channel_layer)
    if relay is not None:
        await relay.leave(group, connection)


def local_members(layer: Any, group: str) -> list[Any]:
    """The connections of this process in ``group`` (through the relay), in the order they joined."""
    relay = _relays.get(layer)
    tap = relay.taps.get(group) if relay is not None else None
    return list(tap.members) if tap is not None else []
