"""Push to a consumer's group from anywhere: views, tasks, management commands, handlers.

``group_send`` runs a handler on every connection of a group, each rendering for itself;
``consumer_command`` sends raw client commands, encoded once. Both go through the channel
layer (``backend.publish``, as every sender), so they reach connections in other processes
when the layer is channels-redis.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER

from hypergen_consumers import conf
from hypergen_consumers.declaring.checked_sends import check_handler_name
from hypergen_consumers.layers.backend import publish
from hypergen_consumers.layers.calls import FRAME_EVENT, RUN_EVENT
from hypergen_consumers.routing import group_owners
from hypergen_consumers.routing.groups import is_valid_group_name
from hypergen_consumers.wire.outgoing import (
    TAIL_BYTES,
    encode,
    encoded_size,
    too_large_to_deliver,
)

__all__ = ["group_send", "agroup_send", "consumer_command", "aconsumer_command"]


def _check_group(function: str, group_name: Any) -> None:
    if not is_valid_group_name(group_name):
        msg = (
            f"{function}() got {group_name!r}, which is not a valid Channels group name. "
            f"Pass the value of YourConsumer.group_name(...)."
        )
        raise ValueError(msg)


def _check_commands(commands: Any, function: str = "consumer_command") -> None:
    if not isinstance(commands, (list, tuple)) or not all(
        isinstance(command, (list, tuple)) and command and isinstance(command[0], str) for command in commands
    ):
        msg = (
            f"{function}() takes a list of commands, each a list starting with the client "
            f'function\'s name, e.g. [["alert", 42]]; got {commands!r}.'
        )
        raise ValueError(msg)


def encoded_commands(commands: list[Any], *, function: str) -> str:
    """``commands`` encoded once, if every member can be sent them (position included); else ValueError."""
    text = encode(list(commands))
    if too_large_to_deliver(text):
        msg = (
            f"{function}(): the commands are {encoded_size(text)} bytes, more than the "
            f"{conf.current().server_max_message_bytes - TAIL_BYTES} the server can send to a connection with the frame's "
            f"position (HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES less {TAIL_BYTES}). Send less at a time."
        )
        raise ValueError(msg)
    return text


async def agroup_send(group_name: str, *args: Any, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Run a handler on every connection in ``group_name``, as if each client had sent ``args``.

    ``args`` follow the client's rule: for a class consumer the first names the handler
    (``group_send(group, "send_message", "hi")``); a ``@consumer`` function takes them all
    (``group_send(group, "hi")``).

    Each connection validates the args, checks the handler's perm for its own user,
    renders for itself and receives its own output only. Raises ChannelLayerUnavailable
    when the layer cannot be reached, and ValueError when the group belongs to one known
    consumer class and ``args`` name none of its handlers. ``ChatRoom.agroup_send(...)``
    also validates the args in the caller.
    """
    _check_group("group_send", group_name)
    owner = group_owners.owner_of(group_name)
    if owner is not None:  # A typo in the handler's name raises here, not on every page.
        check_handler_name(owner, args, "group_send")
    await publish(group_name, {"type": RUN_EVENT, "args": encode(list(args))}, who="group_send", alias=layer)


async def aconsumer_command(group_name: str, commands: list[Any], *, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Send raw client ``commands`` to every connection in ``group_name`` (encoded once).

    Raises ChannelLayerUnavailable when the layer cannot be reached.
    """
    _check_group("consumer_command", group_name)
    _check_commands(commands)
    text = encoded_commands(commands, function="consumer_command")
    await publish(group_name, {"type": FRAME_EVENT, "text": text}, who="consumer_command", alias=layer)


def group_send(group_name: str, *args: Any, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Sync twin of ``agroup_send``, for views, management commands and Celery tasks."""
    async_to_sync(agroup_send)(group_name, *args, layer=layer)


def consumer_command(group_name: str, commands: list[Any], *, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Sync twin of ``aconsumer_command``."""
    async_to_sync(aconsumer_command)(group_name, commands, layer=layer)
