"""Run a handler inside hypergen's rendering context and collect its client commands.

This mirrors what ``hypergen(func, settings=dict(action=True, returns=COMMANDS))`` does
for an ``@action``, with two differences: the handler may be a coroutine (awaited while
the rendering context stays open, which is safe because the context is a ContextVar, see
``_compat.hypergen_context``), and no ``hypergen.onpushstate`` is emitted, since a
websocket message is not a page navigation. The state is set up by
``_compat.rendering_state``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hypergen.context import context
from hypergen.hypergen import plugins_method_call
from hypergen.liveview import LiveviewPluginBase
from hypergen.template import TemplatePlugin, join_html

from hypergen_consumers._compat.hypergen_context import render_guard
from hypergen_consumers._compat.rendering_state import rendering

__all__ = ["render_sync", "render_async"]

logger = logging.getLogger("hypergen_consumers")

_DEFAULT_TARGET = "__default_context__"  # hypergen's contextlist key when no target_id is set


class ConsumerPlugin(LiveviewPluginBase):  # type: ignore[misc]  # hypergen ships no types.
    """hypergen plugin: morph rendered HTML into ``target_id`` and prepend it to the commands."""

    def __init__(self, target_id: str | None, owner: str) -> None:
        self.target_id = target_id
        self.owner = owner

    def context_items(self) -> dict[str, Any]:
        """What ``context()`` sets under ``context.hypergen``, for building the state in one step."""
        return {"event_handler_callbacks": {}, "commands": deque(), "target_id": self.target_id}

    @contextmanager
    def context(self) -> Iterator[None]:
        with context(at="hypergen", **self.context_items()):
            yield

    def template_after(self, **kwargs: Any) -> None:
        leading: list[list[Any]] = []
        callbacks = context.hypergen.event_handler_callbacks
        if callbacks:
            leading.append(["hypergen.setClientState", "hypergen.eventHandlerCallbacks", callbacks])
        for target_id, into in context.hypergen.into.contexts.items():
            if not into:
                continue
            if target_id == _DEFAULT_TARGET:
                logger.warning(
                    "%s rendered HTML but has no target_id, so it was not sent. Set target_id "
                    "(or a base_template with a target_id) on the consumer.",
                    self.owner,
                )
                continue
            leading.append(["hypergen.morph", target_id, join_html(into)])
        context.hypergen.commands.extendleft(reversed(leading))


def _handler_rendering(
    request: Any, target_id: str | None, owner: str, user_plugins: Sequence[Any], matched_perms: frozenset[str]
) -> Any:
    """The setup and teardown both twins share: hypergen's rendering state with the consumer's plugins.

    Returns the context manager itself (no wrapper around it): it runs for every handler.
    """
    return rendering(request, [TemplatePlugin(), ConsumerPlugin(target_id, owner), *user_plugins], matched_perms)


def _finish(template_result: Any) -> list[Any]:
    plugins_method_call("template_after", template_result=template_result)
    return list(context.hypergen.commands)


def render_sync(
    func: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    request: Any,
    target_id: str | None,
    user_plugins: Sequence[Any] = (),
    matched_perms: frozenset[str] = frozenset(),
    owner: str = "",
) -> list[Any]:
    """Call a sync handler while rendering; return its client commands."""
    with _handler_rendering(request, target_id, owner, user_plugins, matched_perms):
        return _finish(func(*args, **kwargs))


async def render_async(
    func: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    request: Any,
    target_id: str | None,
    user_plugins: Sequence[Any] = (),
    matched_perms: frozenset[str] = frozenset(),
    owner: str = "",
) -> list[Any]:
    """Await an async handler while rendering (its twin's setup, plus ``render_guard``); return its commands."""
    async with render_guard():
        with _handler_rendering(request, target_id, owner, user_plugins, matched_perms):
            return _finish(await func(*args, **kwargs))
