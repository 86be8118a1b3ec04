"""The dashboard page's socket: staff only, fed by every process's snapshots, and the operations.

A socket whose user is not active staff is refused (4403) before it joins anything, so it
can never receive a snapshot, whatever frames it crafts. Operations (close a connection,
close every socket of a user, send a notice to a group) need ``OPERATE_PERM``, which every
active superuser has (Django's ``has_perm``); grant it to others with a Permission of that
codename if you like. Each operation is logged with who did it, in the log file
(``hypergen_consumers.dashboard`` logger) and on every dashboard page.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from channels.db import database_sync_to_async
from hypergen.imports import NO_PERM_REQUIRED
from pydantic import Field

from hypergen_consumers import HypergenConsumer, aconsumer_command, conf, handler
from hypergen_consumers.auth.authority import SESSION_ENDED_EVENT
from hypergen_consumers.dashboard import collector, render
from hypergen_consumers.dashboard.board import Board
from hypergen_consumers.errors import INVALID_FRAME, CloseCode
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import bounded
from hypergen_consumers.layers.users import user_group_name

__all__ = ["DashboardConsumer", "OPERATE_PERM", "NOTICE_COMMAND"]

logger = logging.getLogger("hypergen_consumers.dashboard")

#: What the operations require (every active superuser has it).
OPERATE_PERM = "hypergen_consumers_dashboard.operate"
#: The client command a notice to a group arrives as (client.js shows it and fires an event).
NOTICE_COMMAND = "hypergen.websocket.notice"


def is_staff(user: Any) -> bool:
    """Active staff: who may see the dashboard (may query the database: call from a thread)."""
    return bool(user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False))


class DashboardConsumer(HypergenConsumer):
    """One dashboard page. Renders every process's latest snapshot into ``hc-dashboard-body``."""

    perm = NO_PERM_REQUIRED  # Staff is checked in websocket_connect, before anything is joined.
    path = "dashboard/"
    target_id = "hc-dashboard-body"
    broadcast = False
    replay_frames = 0

    board: Board

    async def websocket_connect(self, message: Any) -> None:
        """Refuse (4403) anyone but active staff before the handshake joins any group."""
        if not await database_sync_to_async(is_staff)(self.scope.get("user")):
            logger.info("dashboard: refused a socket of a user who is not staff")
            await self.refuse(CloseCode.PERMISSION_DENIED)
            return
        await super().websocket_connect(message)

    async def on_connect(self, request: Any) -> None:  # type: ignore[override]  # (no URL kwargs)
        self.board = Board(conf.current().dashboard_interval)
        await bounded(self.channel_layer.group_add(collector.DASHBOARD_GROUP, self.channel_name), self.channel_layer)
        self._joined.append(collector.DASHBOARD_GROUP)  # Left on disconnect, rejoined after an outage.
        await collector.publish_now()  # This process at once: the page fills in without waiting.

    async def hypergen_consumers_dashboard(self, event: dict[str, Any]) -> None:
        """A process's snapshot (from the dashboard group): take it and re-render this page."""
        socket = self._hc.socket
        if not socket.accepted or socket.closing or not hasattr(self, "board"):
            return
        self.board.add(event["snapshot"])
        if not await self._authority_holds():
            return
        async with self.rejections():
            await self._run(type(self)._handlers["refresh"], [], to_group=False)

    # --- handlers -----------------------------------------------------------------------

    @handler
    async def refresh(self, request: Any) -> None:
        """Render the live part of the page (also run on every snapshot)."""
        if not is_staff(request.user):  # Staff taken away since the handshake (re-read by authority).
            await self._close_for(CloseCode.PERMISSION_DENIED)
            return
        can_operate = await database_sync_to_async(request.user.has_perm)(OPERATE_PERM)
        render.dashboard_body(self.board, type(self).reverse(), can_operate)

    @handler(perm=OPERATE_PERM)
    async def close_connection(self, request: Any, channel: Annotated[str, Field(max_length=200)]) -> None:
        """Close one socket, in whichever process it is (4401: its page stops retrying)."""
        entry = await self._listed(lambda socket: socket["channel"] == channel, "connection")
        if entry is None:
            return
        await bounded(self.channel_layer.send(channel, {"type": SESSION_ENDED_EVENT}), self.channel_layer)
        self._operation(
            request,
            f"closed a {entry['consumer']} connection of {entry['user'] or 'anonymous'} "
            f"on {entry['host']}:{entry['pid']}",
        )

    @handler(perm=OPERATE_PERM)
    async def close_user(self, request: Any, user_id: int | str) -> None:
        """Close every socket of one user, in every process, with 4401."""
        entry = await self._listed(lambda socket: socket["user_id"] == user_id, "user")
        if entry is None:
            return
        group = user_group_name(user_id)
        ended = {"type": SESSION_ENDED_EVENT}  # Not kept for replay: the user's pages close, none catches up.
        await backend_for(self.channel_layer).publish(group, ended, who="close_user", replay=False)
        self._operation(request, f"closed every socket of {entry['user']}")

    @handler(perm=OPERATE_PERM)
    async def notify_group(
        self,
        request: Any,
        group: Annotated[str, Field(max_length=100)],
        text: Annotated[str, Field(min_length=1, max_length=500)],
    ) -> None:
        """Send a notice to every page of a group the dashboard lists."""
        if await self._listed(lambda socket: socket["group"] == group, "group") is None:
            return
        await aconsumer_command(group, [[NOTICE_COMMAND, {"text": text, "from": request.user.get_username()}]])
        self._operation(request, f"sent a notice to {group}: {text[:100]}")

    # --- helpers ------------------------------------------------------------------------

    async def _listed(self, matches: Any, what: str) -> dict[str, Any] | None:
        """The listed socket an operation targets (only what the dashboard shows can be operated
        on); None, and an error to the operator, if there is none."""
        for entry in self.board.sockets():
            if matches(entry):
                return entry
        await self.send_error(INVALID_FRAME, f"No such {what} on the dashboard (it may have gone already).")
        return None

    def _operation(self, request: Any, what: str) -> None:
        who = request.user.get_username()
        logger.warning("dashboard: %s %s", who, what)
        self.board.note("operation", what, who)
        collector.COLLECTOR.event("operation", "", what, who)
