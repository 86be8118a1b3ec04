"""The heartbeat: how a page finds out that its socket's path died without a close.

A laptop lid, a NAT that forgot the connection or a black-holed link leaves a socket that
looks open to the browser until the OS gives up, minutes later. client.js sends
``{"args":[],"meta":{"heartbeat":true}}`` every 15 s (half its 30 s heartbeat) and treats
one that got no frame back before the next as a dead socket: it closes it, shows the page
offline and reconnects, within one heartbeat of the path dying. The server answers ``[["hypergen.websocket.heartbeat"]]`` at
once, without running a handler, touching the channel layer or taking a frame id; the
reply carries no commands for the page. See docs/protocol.rst.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HEARTBEAT_FRAME", "HEARTBEAT_REPLY", "is_heartbeat"]

#: What client.js sends (JSON.stringify's spelling): answered before any decoding.
HEARTBEAT_FRAME = '{"args":[],"meta":{"heartbeat":true}}'
#: The server's answer, a command list whose one command does nothing on the page.
HEARTBEAT_REPLY = '[["hypergen.websocket.heartbeat"]]'


def is_heartbeat(content: dict[str, Any]) -> bool:
    """A decoded ``{"args": [], "meta": {"heartbeat": true}}`` in any other spelling."""
    return content["meta"].get("heartbeat") is True and content["args"] == []
