"""Send to every open socket of one user: every tab, every consumer, every process.

Every authenticated connection also joins its user's group, ``hc-user-<pk>``. Names
starting with ``hc-`` are reserved for the package's own groups: a custom group rule that
returns one is refused (ReservedGroupName), so no consumer URL leads into a user's group.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER

from hypergen_consumers.layers.backend import publish
from hypergen_consumers.layers.calls import FRAME_EVENT
from hypergen_consumers.layers.messaging import _check_commands, encoded_commands
from hypergen_consumers.routing.groups import MAX_GROUP_NAME_LENGTH, digest

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import Member

__all__ = ["user_group_name", "user_groups", "user_command", "auser_command"]

USER_GROUP_PREFIX = "hc-user-"
_CLEAN_PK = re.compile(r"^[a-zA-Z\d_-]+$")


def user_group_name(user_or_pk: Any) -> str:
    """The group every socket of a user joins; takes a user object or its primary key."""
    pk = getattr(user_or_pk, "pk", user_or_pk)
    if getattr(user_or_pk, "is_anonymous", False) or pk is None or isinstance(pk, bool):
        msg = (
            f"user_command() needs a saved, authenticated user or a user's primary key; got {user_or_pk!r}. "
            f"Anonymous connections have no user to address: send to a consumer's group instead."
        )
        raise ValueError(msg)
    text = str(pk)
    name = USER_GROUP_PREFIX + text
    if _CLEAN_PK.match(text) and len(name) <= MAX_GROUP_NAME_LENGTH:
        return name
    return USER_GROUP_PREFIX + digest("pk:" + text)


def user_groups(connection: Member) -> list[str]:
    """The extra groups a connection joins at connect: its user's group, if it has a user."""
    user = connection.request.user
    if not getattr(user, "is_authenticated", False):
        return []
    return [user_group_name(user)]


async def auser_command(user: Any, commands: list[Any], *, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Send raw client ``commands`` to every open socket of ``user`` (a user object or pk).

    Reaches every consumer, tab and process (with channels-redis), encoded once; a user
    with no open socket receives nothing; a page of that user that reconnects within the
    replay window gets what it missed (the defaults: 200 frames, 120 s). Raises ChannelLayerUnavailable when the layer
    cannot be reached.
    """
    group = user_group_name(user)
    _check_commands(commands, function="user_command")
    message = {"type": FRAME_EVENT, "text": encoded_commands(commands, function="user_command")}
    await publish(group, message, who="user_command", alias=layer)  # Stamped: the user's pages that reconnect get it.


def user_command(user: Any, commands: list[Any], *, layer: str = DEFAULT_CHANNEL_LAYER) -> None:
    """Sync twin of ``auser_command``, for views, management commands and Celery tasks."""
    async_to_sync(auser_command)(user, commands, layer=layer)
