"""Run a handler inside hypergen's rendering context and collect its client commands.

This mirrors what ``hypergen(func, settings=dict(action=True, returns=COMMANDS))`` does
for an ``@action``, with two differences: the handler may be a coroutine (awaited while
the rendering context stays open, which is safe because the context is a ContextVar, see
``_context``), and no ``hypergen.onpushstate`` is emitted, since a websocket message is
not a page navigation.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from hypergen.context import context, contextlist
from hypergen.hypergen import plugins_method_call
from hypergen.liveview import LiveviewPluginBase
from hypergen.template import TemplatePlugin, join_html
from ._context import HYPERGEN_CONTEXT, fast_pmap

__all__ = ["render_sync", "render_async"]

logger = logging.getLogger("hypergen_consumers")

_DEFAULT_TARGET = "__default_context__"  # hypergen's contextlist key when no target_id is set


class ConsumerPlugin(LiveviewPluginBase):
    """hypergen plugin: morph rendered HTML into ``target_id`` and prepend it to the commands."""

    def __init__(self, target_id: str | None, owner: str) -> None:
        self.target_id = target_id
        self.owner = owner

    @contextmanager
    def context(self) -> Iterator[None]:
        with context(at="hypergen", event_handler_callbacks={}, commands=deque(), target_id=self.target_id):
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


@contextmanager
def _rendering(
    request: Any, target_id: str | None, user_plugins: Sequence[Any], matched_perms: frozenset[str], owner: str
) -> Iterator[None]:
    """hypergen's rendering state for one message, set in one step.

    Equivalent to ``context(request=...)`` + ``context(at="hypergen", ...)`` + entering
    TemplatePlugin's and ConsumerPlugin's ``context()``, which is what ``hypergen()`` does,
    but built as one map: this runs for every message, and the nested context managers
    cost more than the handler's own rendering. User plugins' ``context()`` still run.
    """
    plugins = [TemplatePlugin(), ConsumerPlugin(target_id, owner), *user_plugins]
    state = fast_pmap(
        {
            "plugins": plugins,
            "base_template": None,
            "matched_perms": set(matched_perms),
            "partial_base_template": None,
            "into": contextlist("target_id"),  # TemplatePlugin.context
            "ids": set(),
            "event_handler_callbacks": {},  # ConsumerPlugin.context
            "commands": deque(),
            "target_id": target_id,
        }
    )
    token = HYPERGEN_CONTEXT.set(fast_pmap({**HYPERGEN_CONTEXT.get(), "request": request, "hypergen": state}))
    try:
        with ExitStack() as stack:
            for plugin in user_plugins:
                if hasattr(plugin, "context"):
                    stack.enter_context(plugin.context())
            plugins_method_call("template_before")
            yield
    finally:
        HYPERGEN_CONTEXT.reset(token)


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
    with _rendering(request, target_id, user_plugins, matched_perms, owner):
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
    """Await an async handler while rendering; return its client commands."""
    with _rendering(request, target_id, user_plugins, matched_perms, owner):
        return _finish(await func(*args, **kwargs))
