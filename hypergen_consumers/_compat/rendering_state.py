"""hypergen's rendering state for one message, built in one step: hard-codes ``hypergen()``'s keys.

For an ``@action``, ``hypergen()`` nests ``context(request=...)``, ``context(at="hypergen",
plugins=..., base_template=...)`` (plus ``matched_perms``/``partial_base_template`` from the
decorator) and each plugin's ``context()``. That runs for every websocket message, and the
nested context managers and pmap updates cost more than a small handler's own rendering.
:func:`rendering` builds the same map at once: the keys ``hypergen()`` and its
``TemplatePlugin`` set are written out here, plugins that offer ``context_items()`` (ours)
add theirs, and any other plugin's ``context()`` is entered as hypergen would.

:func:`enter` and :func:`leave` do the same without any context manager, for a consumer
whose plugins need nothing entered (``connection.rendering`` decides once per class), and
:func:`new_contextlist` makes hypergen's HTML collector without ``UserList.__init__``, whose
``data`` setter reads the context on every message.

Relies on: ``hypergen()`` and ``TemplatePlugin.context()`` setting exactly the keys (and
value types) written out below, and on ``contextlist`` keeping its state in ``context_key``
and ``contexts``. :func:`check` compares against a real ``hypergen()`` run and a real
``contextlist``. Without that shape every message goes through the nested context managers,
as in hypergen.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from hypergen.context import context, contextlist
from hypergen.hypergen import plugins_method_call
from hypergen.template import COMMANDS, TemplatePlugin, hypergen

from hypergen_consumers._compat import hypergen_context
from hypergen_consumers._compat.hypergen_context import HYPERGEN_CONTEXT
from hypergen_consumers._compat.pmap import fast_pmap, items_of

__all__ = ["FALLBACK", "apply", "check", "enter", "is_active", "leave", "new_contextlist", "rendering"]

FALLBACK = "hypergen's nested context managers for every message's rendering state"

#: What hypergen's action decorator adds to ``context.hypergen`` around ``hypergen()``.
ACTION_KEYS = frozenset({"matched_perms", "partial_base_template"})

_active = False


def _fast_state(plugins: Sequence[Any], matched_perms: frozenset[str]) -> tuple[dict[str, Any], list[Any]]:
    """The ``context.hypergen`` map, and the plugins whose ``context()`` must still be entered."""
    state: dict[str, Any] = {
        "plugins": list(plugins),
        "base_template": None,
        "matched_perms": set(matched_perms),
        "partial_base_template": None,
    }
    entered = []
    for plugin in plugins:
        if type(plugin) is TemplatePlugin:
            state.update(into=new_contextlist(), ids=set())
        elif hasattr(plugin, "context_items"):
            state.update(plugin.context_items())
        elif hasattr(plugin, "context"):
            entered.append(plugin)
    return state, entered


_DEFAULT_TARGET = "__default_context__"  # contextlist's key when no target_id is set


def new_contextlist() -> Any:
    """``contextlist("target_id")`` as made outside a render: one empty list, under the default key."""
    if not _active:
        return contextlist("target_id")
    made = contextlist.__new__(contextlist)
    made.context_key = "target_id"
    made.contexts = defaultdict(list)
    made.contexts[_DEFAULT_TARGET] = []
    return made


def enter(request: Any, state: dict[str, Any]) -> Any:
    """Make ``state`` hypergen's rendering state (``context.hypergen``) and ``request`` its
    request; return what :func:`leave` restores. No plugin's ``context()`` is entered and no
    ``template_before`` called: only for plugins that need neither."""
    storage = _storage()
    previous = context.ctx if storage is None else storage.get()
    hypergen_state = fast_pmap(state)
    if previous:
        current = fast_pmap({**items_of(previous), "request": request, "hypergen": hypergen_state})
    else:
        current = fast_pmap({"request": request, "hypergen": hypergen_state})
    if storage is None:
        context.ctx = current
    else:
        storage.set(current)
    return previous


def leave(previous: Any) -> None:
    """Restore the context :func:`enter` replaced."""
    storage = _storage()
    if storage is None:
        context.ctx = previous
    else:
        storage.set(previous)


def _storage() -> Any:
    """The ContextVar behind ``context.ctx`` once ``hypergen_context`` swapped it in (set and
    read directly: ``context.ctx`` is a property of a ``threading.local``, dearer on every
    run), else None."""
    return HYPERGEN_CONTEXT if hypergen_context.is_active() else None


@contextmanager
def _enter_plugins(plugins: Sequence[Any]) -> Iterator[None]:
    with ExitStack() as stack:
        for plugin in plugins:
            if hasattr(plugin, "context"):
                stack.enter_context(plugin.context())
        plugins_method_call("template_before")
        yield


@contextmanager
def _fast(request: Any, plugins: Sequence[Any], matched_perms: frozenset[str]) -> Iterator[None]:
    state, entered = _fast_state(plugins, matched_perms)
    previous = context.ctx
    context.ctx = fast_pmap({**previous, "request": request, "hypergen": fast_pmap(state)})
    try:
        with _enter_plugins(entered):
            yield
    finally:
        context.ctx = previous


@contextmanager
def _plain(request: Any, plugins: Sequence[Any], matched_perms: frozenset[str]) -> Iterator[None]:
    options = {"matched_perms": set(matched_perms), "partial_base_template": None}
    with context(request=request), context(at="hypergen", plugins=list(plugins), base_template=None, **options):
        with _enter_plugins(plugins):
            yield


def rendering(request: Any, plugins: Sequence[Any], matched_perms: frozenset[str]) -> Any:
    """Enter hypergen's rendering state for ``plugins`` (``TemplatePlugin`` first) and run ``template_before``."""
    return (_fast if _active else _plain)(request, plugins, matched_perms)


class _ActionLikePlugin:
    """What hypergen's ActionPlugin puts in the context, offered the fast way."""

    def context_items(self) -> dict[str, Any]:
        return {"event_handler_callbacks": {}, "commands": deque(), "target_id": "probe"}


def _shape(state: Any) -> dict[str, type]:
    return {key: type(state[key]) for key in state}


def check() -> str | None:
    """``None`` if the fast state has the keys and value types a real ``hypergen()`` action run has."""
    from django.http import HttpRequest

    seen: dict[str, type] = {}

    def template() -> None:
        seen.update(_shape(context.hypergen))

    try:
        made = contextlist("target_id")
        if sorted(vars(made)) != ["context_key", "contexts"] or dict(made.contexts) != {_DEFAULT_TARGET: []}:
            return f"hypergen's contextlist now keeps {sorted(vars(made))}, not context_key and contexts"
        with context(request=HttpRequest()):
            hypergen(template, settings={"action": True, "returns": COMMANDS, "target_id": "probe"})
    except Exception as exc:  # Any failure here means hypergen() changed.
        return f"hypergen() could not be probed for its rendering state ({exc!r})"
    expected = {**seen, "matched_perms": set, "partial_base_template": type(None)}
    fast, _ = _fast_state([TemplatePlugin(), _ActionLikePlugin()], frozenset())
    if _shape(fast) != expected:
        return f"hypergen()'s rendering state is now {sorted(expected)}, not {sorted(_shape(fast))}"
    return None


def apply() -> None:
    global _active
    _active = True


def is_active() -> bool:
    return _active
