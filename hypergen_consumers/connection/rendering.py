"""Run a handler inside hypergen's rendering context and collect its client commands.

This mirrors what ``hypergen(func, settings=dict(action=True, returns=COMMANDS))`` does
for an ``@action``, with two differences: the handler may be a coroutine (awaited while
the rendering context stays open, which is safe because the context is a ContextVar, see
``_compat.hypergen_context``), and no ``hypergen.onpushstate`` is emitted, since a
websocket message is not a page navigation. The state is set up by
``_compat.rendering_state``.

A :class:`Renderer` is made once per consumer class and ``target_id``: its plugins, and
whether they let the state be set in one step (:func:`rendering_state.enter`) rather than
through each plugin's ``context()``. That setup ran for every message and cost more than
the handler of a small command (``bench/``: round trip).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hypergen.context import context
from hypergen.hypergen import plugins_method_call
from hypergen.liveview import LiveviewPluginBase
from hypergen.template import TemplatePlugin, join_html

from hypergen_consumers._compat import hypergen_context, rendering_state
from hypergen_consumers._compat.hypergen_context import render_guard
from hypergen_consumers._compat.rendering_state import rendering

__all__ = ["Renderer", "renderer_for", "render_sync", "render_async"]

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
        self.finish(context.hypergen)

    def finish(self, state: Any) -> None:
        """Put the morph of what was rendered, and the callbacks it set, before the commands."""
        leading: list[list[Any]] = []
        callbacks = state["event_handler_callbacks"]
        if callbacks:
            leading.append(["hypergen.setClientState", "hypergen.eventHandlerCallbacks", callbacks])
        for target_id, into in state["into"].contexts.items():
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
        if leading:
            state["commands"].extendleft(reversed(leading))


class Renderer:
    """How one consumer class renders for one ``target_id``: its plugins, built once.

    hypergen's ``TemplatePlugin``, the :class:`ConsumerPlugin` and the class's
    ``user_plugins``, in that order, as ``hypergen()`` orders them. When no plugin needs its
    ``context()`` entered (or offers ``context_items()`` instead) and none has a
    ``template_before``, a run sets the whole state in one step; otherwise it goes through
    ``rendering_state.rendering``, every plugin's hooks called as hypergen would.
    """

    __slots__ = ("target_id", "owner", "declared", "user_plugins", "plugins", "ours", "items", "afters", "direct")

    def __init__(self, target_id: str | None, owner: str, user_plugins: Sequence[Any]) -> None:
        self.target_id = target_id
        self.owner = owner
        self.declared = user_plugins  # As the class holds it: a class that replaces it gets a new Renderer.
        self.user_plugins = tuple(user_plugins)
        self.ours = ConsumerPlugin(target_id, owner)
        self.plugins = (TemplatePlugin(), self.ours, *self.user_plugins)
        self.items = [plugin for plugin in self.user_plugins if hasattr(plugin, "context_items")]
        self.afters = [plugin.template_after for plugin in self.user_plugins if hasattr(plugin, "template_after")]
        self.direct = not any(
            hasattr(plugin, "template_before") or (hasattr(plugin, "context") and not hasattr(plugin, "context_items"))
            for plugin in self.user_plugins
        )

    def _state(self, matched_perms: frozenset[str]) -> dict[str, Any]:
        state: dict[str, Any] = {
            "plugins": list(self.plugins),
            "base_template": None,
            "matched_perms": set(matched_perms),
            "partial_base_template": None,
            "into": rendering_state.new_contextlist(),
            "ids": set(),
            "event_handler_callbacks": {},
            "commands": deque(),
            "target_id": self.target_id,
        }
        for plugin in self.items:
            state.update(plugin.context_items())
        return state

    def _finish(self, state: dict[str, Any], template_result: Any) -> list[Any]:
        self.ours.finish(state)
        for after in self.afters:
            after(template_result=template_result)
        return list(state["commands"])

    def _in_one_step(self) -> bool:
        return self.direct and rendering_state.is_active()

    def run_sync(
        self,
        func: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        request: Any,
        matched: frozenset[str],
    ) -> list[Any]:
        """Call a sync handler while rendering; return its client commands."""
        if not self._in_one_step():
            with rendering(request, list(self.plugins), matched):
                return _finish(func(*args, **kwargs))
        state = self._state(matched)
        previous = rendering_state.enter(request, state)
        try:
            return self._finish(state, func(*args, **kwargs))
        finally:
            rendering_state.leave(previous)

    async def run_async(
        self,
        func: Callable[..., Awaitable[Any]],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        request: Any,
        matched: frozenset[str],
    ) -> list[Any]:
        """Await an async handler while rendering; return its client commands."""
        if not (self._in_one_step() and hypergen_context.is_active()):
            async with render_guard():
                with rendering(request, list(self.plugins), matched):
                    return _finish(await func(*args, **kwargs))
        state = self._state(matched)
        previous = rendering_state.enter(request, state)
        try:
            return self._finish(state, await func(*args, **kwargs))
        finally:
            rendering_state.leave(previous)


def renderer_for(cls: type, target_id: str | None, user_plugins: Sequence[Any]) -> Renderer:
    """The :class:`Renderer` of consumer class ``cls`` (its ``user_plugins``) for ``target_id``.

    Kept on the class itself (its own ``__dict__``, not a subclass's): asked for on every run,
    and a class's attribute is found faster than a weak mapping's entry, and goes with it.
    """
    by_target: dict[str | None, Renderer] | None = cls.__dict__.get("_hc_renderers")
    if by_target is None:
        by_target = {}
        cls._hc_renderers = by_target  # type: ignore[attr-defined]
    renderer = by_target.get(target_id)
    if renderer is None or renderer.declared is not user_plugins:
        renderer = by_target[target_id] = Renderer(target_id, cls.__name__, user_plugins)
    return renderer


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
    """Call a sync handler while rendering (a one-off :class:`Renderer`); return its client commands."""
    return Renderer(target_id, owner, user_plugins).run_sync(func, args, kwargs, request, matched_perms)


async def render_async(
    func: Callable[..., Awaitable[Any]],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    request: Any,
    target_id: str | None,
    user_plugins: Sequence[Any] = (),
    matched_perms: frozenset[str] = frozenset(),
    owner: str = "",
) -> list[Any]:
    """Await an async handler while rendering (a one-off :class:`Renderer`); return its client commands."""
    return await Renderer(target_id, owner, user_plugins).run_async(func, args, kwargs, request, matched_perms)
