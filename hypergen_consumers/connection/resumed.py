"""Driving a coroutine by hand, as ``await`` (``yield from``) would: one place for it.

Three hot paths step a coroutine themselves instead of awaiting it directly: the lane runs a
handler's first step at once and arms its timeout only if it waits (``executor``); a group's
tap writes to a member's socket from outside the member's task and leaves a write the server
made wait to a task of its own (``delivery.local_groups``); a connection's pumps run every
dispatch in one shared ``contextvars`` context while each waits for its source in its own
(``receivers``). :class:`Resumed` does all three.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["NOT_STARTED", "Resumed"]

#: ``first`` for a coroutine none of whose steps has run yet.
NOT_STARTED: Any = object()


class Resumed:
    """Awaiting this carries ``coroutine`` on exactly as awaiting it would: from the start, or,
    when its first step already ran and yielded ``first``, from there; each step inside
    ``context`` when one is given (entered for the step and left after it, as if the awaiting
    task's own context were ``context``)."""

    __slots__ = ("coroutine", "first", "context")

    def __init__(
        self,
        coroutine: Coroutine[Any, Any, Any],
        first: Any = NOT_STARTED,
        context: contextvars.Context | None = None,
    ) -> None:
        self.coroutine = coroutine
        self.first = first
        self.context = context

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, value, context = self.coroutine, self.first, self.context
        if value is NOT_STARTED:
            try:
                value = coroutine.send(None) if context is None else context.run(coroutine.send, None)
            except StopIteration as finished:
                return finished.value
        while True:
            thrown: BaseException | None = None
            sent: Any = None
            try:
                sent = yield value
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # Thrown in (a cancellation): the coroutine handles it.
                thrown = exc
            # Thrown outside the except block, so the coroutine does not see it as the exception
            # being handled (sys.exc_info(), the __context__ of what it raises next).
            try:
                if context is None:
                    value = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
                elif thrown is None:
                    value = context.run(coroutine.send, sent)
                else:
                    value = context.run(coroutine.throw, thrown)
            except StopIteration as finished:
                return finished.value
            finally:
                thrown = None  # No cycle through a traceback that holds this frame.
