"""Which streams a connection is replayed from, and how their positions travel.

A connection is in several groups that can carry frames: its own (``group_name()``), the
extra ``groups`` its class lists, and its user's group (``user_command``). Each of them is a
stream with its own positions (``replay.py``), so the connection tracks one position per
stream. The browser never sees a group's name: a stream is its index ``k`` in the ordered
list ``[own group, *groups, user group]`` (the own group is 0, so a page that knows one
stream speaks the protocol as before):

- down, a frame of stream ``k`` ends with ``["hypergen.websocket.position", p, k]``
  (``k`` left out for 0);
- up, a reconnecting page passes ``hypergen_position=<p0>`` and ``hypergen_position_<k>=<pk>``.

The server reads only the indexes it has streams for, so a page cannot name a group it is
not in, and garbage, huge or surplus positions cost nothing but their parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hypergen_consumers.delivery.replay import remember_group
from hypergen_consumers.layers.users import user_groups
from hypergen_consumers.wire.outgoing import encode, with_command

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import Member

__all__ = [
    "Stream",
    "MAX_STREAMS",
    "POSITION_COMMAND",
    "replayed_groups",
    "given_position",
    "position_command",
    "positions_frame",
    "with_position",
    "encode_position",
    "start_key",
]

POSITION_COMMAND = "hypergen.websocket.position"
POSITION_PARAM = "hypergen_position"
#: At most this many streams per connection (client.js keeps no more): groups past it are
#: joined and get live frames, without replay.
MAX_STREAMS = 64

_POSITION = re.compile(r"^(\d{1,15}-\d{1,10})?$")


@dataclass
class Stream:
    """Where a connection is in one group's stream."""

    window: Any
    frames: int
    seconds: float
    position: str
    resumed: bool
    group: str = ""
    index: int = 0


def replayed_groups(member: Member) -> list[str]:
    """``[own group, *extra groups, user group]``, each once, at most MAX_STREAMS.

    The extra groups take their window from the connection's class (as its own group does);
    the user's group is shared by every consumer of that user, so it keeps the defaults.
    The order is fixed by the class, so a stream's index means the same group on every
    reconnect of the page (the user's group comes last: a login adds it without moving the others).
    """

    extras = [group for group in member.groups or [] if isinstance(group, str)]
    for group in extras:
        remember_group(group, type(member))
    groups: list[str] = []
    for group in [member.group, *extras, *user_groups(member)]:
        if group not in groups:
            groups.append(group)
    return groups[:MAX_STREAMS]


def given_position(query: dict[str, str], index: int) -> str | None:
    """The position the page gives for stream ``index``, or None (none given, or not a position)."""
    given = query.get(POSITION_PARAM if index == 0 else f"{POSITION_PARAM}_{index}")
    return given if given is not None and _POSITION.match(given) else None


def start_key(socket_key: str, index: int) -> str:
    """Where a new socket starts in stream ``index`` is remembered under this key."""
    return socket_key if index == 0 else f"{socket_key}#{index}"


def position_command(position: str, index: int) -> list[Any]:
    return [POSITION_COMMAND, position] if index == 0 else [POSITION_COMMAND, position, index]


def positions_frame(streams: list[Stream]) -> str:
    """One frame telling the page where it is in each of ``streams``."""
    return encode([position_command(stream.position, stream.index) for stream in streams])


def encode_position(position: str, index: int = 0) -> str:
    """The encoded position command (what ``with_position`` appends)."""
    # Positions are digits and "-", indexes digits: nothing to escape.
    return f'["{POSITION_COMMAND}","{position}"]' if index == 0 else f'["{POSITION_COMMAND}","{position}",{index}]'


def with_position(text: str, position: str, index: int = 0) -> str:
    """Append the position command to an encoded command list, without decoding it."""
    return with_command(text, encode_position(position, index))
