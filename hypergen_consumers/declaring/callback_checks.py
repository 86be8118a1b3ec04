"""Catch a callback's typo when the page renders, not when the user clicks.

A ``callback(ChatRoom.reverse(...), "send_mesage", text)`` would only answer
``unknown_handler`` once someone clicks. Here the callbacks a liveview registered are
checked against the consumer their URL reaches, when the page renders: an unknown handler
or a wrong number of arguments raises under DEBUG and logs an error otherwise.
``ChatRoom.callback("send_message", text, room_name=...)`` builds a checked callback
directly (and accepts ``ChatRoom.send_message`` itself, so editors can follow it).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import Resolver404

from hypergen_consumers.declaring.url_kwarg_hints import url_kwarg_hint
from hypergen_consumers.routing.registry import REGISTRY

__all__ = ["CallbackProblem", "CallbackCheckPlugin", "build_callback", "callback_problem", "report"]

logger = logging.getLogger("hypergen_consumers")


class CallbackProblem(ValueError):
    """A callback names a handler that does not exist or passes the wrong number of arguments."""


def arity(spec: Any) -> tuple[int, int]:
    """(fewest, most) arguments a client may send to a handler."""
    fields = spec.model.model_fields
    field_of = {param.name: param.field for param in spec.params}
    required = sum(1 for name in spec.client_params if fields[field_of[name]].is_required())
    return required, len(spec.client_params)


def callback_problem(cls: Any, args: list[Any] | tuple[Any, ...]) -> str | None:
    """What is wrong with a callback sending ``args`` to consumer ``cls``, or None."""
    if cls._function_handler is not None:
        spec, sent, label = cls._handlers[cls._function_handler], list(args), cls.__name__
    else:
        name = args[0] if args else None
        spec = cls._handlers.get(name) if isinstance(name, str) else None
        if spec is None:
            handlers = sorted(cls._handlers)
            example = handlers[0] if handlers else "handler_name"
            return (
                f"{cls.__name__} has no handler {name!r}; its handlers are {handlers}. The first callback "
                f"argument of a class consumer always names the handler: callback(url, {example!r}, ...)."
            )
        sent, label = list(args[1:]), f"{cls.__name__}.{name}"
    fewest, most = arity(spec)
    if fewest <= len(sent) <= most:
        return None
    expected = str(most) if fewest == most else f"{fewest} to {most}"
    # Too few args is how a misnamed URL-kwarg parameter shows up: it became a client arg.
    hint = url_kwarg_hint(cls, spec) if len(sent) < fewest else ""
    return (
        f"{label} takes {expected} argument(s) from the client {list(spec.client_params)}; "
        f"this callback sends {len(sent)}.{hint}"
    )


def report(problem: str) -> None:
    """Raise under DEBUG (the developer sees it at once); log an error otherwise."""
    if settings.DEBUG:
        raise CallbackProblem(problem)
    logger.error("callback problem: %s", problem)


def consumer_for_url(url: Any) -> Any:
    """The mounted consumer class a ``ws://`` URL reaches, or None."""
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        return None
    path = urlsplit(url).path
    for cls, mount in list(REGISTRY.mounts.items()):
        try:
            mount.resolver.resolve(path)
        except Resolver404:
            continue
        return cls
    return None


class CallbackCheckPlugin:
    """hypergen plugin: after a liveview's template ran, check its callbacks to consumers."""

    def template_after(self, **kwargs: Any) -> None:
        from hypergen.context import context

        callbacks = context.hypergen.get("event_handler_callbacks") or {}
        for command in list(callbacks.values()):
            if not (isinstance(command, list) and len(command) >= 3 and command[0] == "hypergen.callback"):
                continue
            cls = consumer_for_url(command[1])
            problem = callback_problem(cls, command[2]) if cls is not None else None
            if problem is not None:
                report(problem)


def build_callback(cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``cls.callback(...)``: split URL kwargs from hypergen's callback options, check, build."""
    from hypergen.liveview import callback

    url_names = set(cls._route.kwarg_names)
    url_kwargs = {name: value for name, value in kwargs.items() if name in url_names}
    options = {name: value for name, value in kwargs.items() if name not in url_names}
    args = tuple(args)
    if cls._function_handler is None and args and callable(args[0]):
        handler = args[0]
        name = getattr(handler, "__name__", None)
        if cls._handlers.get(name) is None or cls._handlers[name].func is not getattr(handler, "__func__", handler):
            msg = f"{cls.__name__}.callback() got {handler!r}, which is not a @handler of {cls.__name__}."
            raise CallbackProblem(msg)
        args = (name, *args[1:])
    problem = callback_problem(cls, args)
    if problem is not None:
        report(problem)
    return callback(cls.reverse(**url_kwargs), *args, **options)


# --- manage.py check: the callbacks written in the source ------------------------------


class _Unknown:
    """Stands for an argument whose value only the page knows."""


def _consumer_named(node: Any, namespace: dict[str, Any]) -> Any:
    """The consumer class an AST name refers to in a module's globals, or None."""
    import ast

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reverse":
        node = node.func.value
    if isinstance(node, ast.Name):
        found = namespace.get(node.id)
        if isinstance(found, type) and isinstance(getattr(found, "_handlers", None), dict):
            return found
    return None


def _argument(node: Any, cls: Any, namespace: dict[str, Any]) -> Any:
    import ast

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and _consumer_named(node.value, namespace) is cls:
        return node.attr  # ChatRoom.send_message given as the handler itself.
    return _Unknown()


def source_problems(module: Any) -> list[tuple[int, Any, str]]:
    """(line, consumer, problem) for each ``callback(X.reverse(...), ...)`` or ``X.callback(...)``
    in a module's source whose handler name or argument count cannot work."""
    import ast
    import inspect

    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return []
    namespace = vars(module)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(isinstance(arg, ast.Starred) for arg in node.args):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "callback" and node.args:
            cls, args = _consumer_named(node.args[0], namespace), node.args[1:]
        elif isinstance(func, ast.Attribute) and func.attr == "callback":
            cls, args = _consumer_named(func.value, namespace), node.args
        else:
            continue
        if cls is None:
            continue
        problem = callback_problem(cls, [_argument(arg, cls, namespace) for arg in args])
        if problem is not None:
            problems.append((node.lineno, cls, problem))
    return problems
