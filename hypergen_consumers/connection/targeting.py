"""Who gets what: ``broadcast`` (True, False, "others"), ``send_commands`` and sync event methods.

Kept apart from ``pipeline.py`` so the per-connection pipeline only asks two questions
here: where does a handler's output go, and how is a channel-layer event method run.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import DatabaseSyncToAsync
from django.core.exceptions import ImproperlyConfigured
from hypergen.context import context

from hypergen_consumers.connection.executor import worker_pool
from hypergen_consumers.wire.outgoing import encode

__all__ = ["BROADCAST_CHOICES", "OTHERS", "TargetingMixin", "check_broadcast", "run_event_method"]

#: ``broadcast = "others"``: handler output goes to the group, the sender excluded.
OTHERS = "others"
BROADCAST_CHOICES = (True, False, OTHERS)


def check_broadcast(owner: str, value: Any) -> Any:
    """``value`` if it is True, False or "others"; else ImproperlyConfigured naming ``owner``."""
    if value is True or value is False or value == OTHERS:
        return value
    msg = (
        f"{owner}: broadcast must be True (the group), False (the sender only) or "
        f"'others' (the group but the sender), not {value!r}."
    )
    raise ImproperlyConfigured(msg)


def _check_commands(who: str, commands: Any) -> list[Any]:
    if not (
        isinstance(commands, (list, tuple, deque))
        and all(isinstance(c, (list, tuple)) and c and isinstance(c[0], str) for c in commands)
    ):
        msg = f'{who} takes a list of hypergen commands, e.g. [["alert", 42]]; got {commands!r}'[:300]
        raise ValueError(msg)
    return [list(command) for command in commands]


class TargetingMixin:
    """``send_commands`` / ``asend_commands``: commands to this connection alone (guide: "Who gets what")."""

    async def asend_commands(self, commands: list[Any]) -> None:
        """Send ``commands`` to this connection alone, now (from async code)."""
        commands = _check_commands("asend_commands", commands)
        if commands:
            await self.send(text_data=encode(commands))  # type: ignore[attr-defined]

    def send_commands(self, commands: list[Any]) -> None:
        """Send ``commands`` to this connection alone, now, from sync code: a ``def`` handler,
        hook or event method (they run in a worker thread).

        They arrive before what the handler renders, which is sent when it returns.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(self.asend_commands)(commands)
            return
        msg = (
            f"{type(self).__name__}.send_commands() was called from async code; "
            "use 'await self.asend_commands(commands)' there."
        )
        raise RuntimeError(msg)


async def run_event_method(method: Any, message: dict[str, Any], request: Any = None) -> None:
    """Run a channel-layer event method: ``async def`` awaited, ``def`` in a worker thread.

    Upstream hypergen's (and Channels' sync consumers') event methods are plain ``def``;
    in a worker thread they may use the ORM, render with ``hypergen(...)`` (the
    connection's request is in hypergen's context, as upstream's dispatch put it) and
    send with ``self.send_commands(...)``.
    """
    if inspect.iscoroutinefunction(method):
        await method(message)
        return

    def call() -> None:
        if request is None:
            method(message)
            return
        with context(request=request):
            method(message)

    # The worker pool, not asgiref's one thread-sensitive thread (see executor).
    await DatabaseSyncToAsync(call, thread_sensitive=False, executor=worker_pool())()
