"""Log client mistakes within a budget, so a client cannot turn bad frames into log volume.

Every refused frame is answered and logged, but a client sending 200 bad frames a second
(or a flood the rate limit refuses) would otherwise write 200 log lines a second, on every
process it reaches. The same budget holds what else a client can cause at will: a handler
that raises (its traceback, about 2 KB, for a 34-byte frame), a refused reserved-group
handshake, an output refused for its size. The process logs at most ``lines`` client
mistakes per ``seconds`` (a token bucket: bursts up to ``lines`` pass at once); the ones
over budget are counted, and the count is logged with the next line that fits, or on its
own once the budget has room again (so a flood followed by silence is still counted). Each line is cut to
:data:`MAX_LINE_CHARS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

__all__ = ["MistakeLog", "mistakes", "MAX_LINE_CHARS"]

logger = logging.getLogger("hypergen_consumers")

#: The longest message a logged client mistake keeps.
MAX_LINE_CHARS = 300


class MistakeLog:
    """A token bucket of log lines: ``lines`` per ``seconds``, the excess counted."""

    def __init__(self, lines: int = 20, seconds: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.lines = lines
        self.seconds = seconds
        self.clock = clock
        self._report: asyncio.TimerHandle | None = None
        self._report_loop: asyncio.AbstractEventLoop | None = None
        self.reset()

    def reset(self) -> None:
        self.tokens = float(self.lines)
        self.updated = self.clock()
        self.suppressed = 0
        if self._report is not None:
            self._report.cancel()
            self._report = None

    def warning(self, owner: str, code: str, message: str) -> bool:
        """Log ``owner: code: message`` if the budget allows; return whether it was logged."""
        return self._log(owner, code, message, with_traceback=False)

    def exception(self, owner: str, code: str, message: str) -> bool:
        """As ``warning``, at ERROR with the traceback being handled (lines within budget come in full)."""
        return self._log(owner, code, message, with_traceback=True)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.lines), self.tokens + (now - self.updated) * self.lines / self.seconds)
        self.updated = now

    def _log(self, owner: str, code: str, message: str, *, with_traceback: bool) -> bool:
        self._refill()
        if self.tokens < 1:
            self.suppressed += 1
            self._report_later()
            return False
        self.tokens -= 1
        self._report_suppressed()
        if with_traceback:
            logger.error("%s: %s: %s", owner, code, message[:MAX_LINE_CHARS], exc_info=True)
        else:
            logger.warning("%s: %s: %s", owner, code, message[:MAX_LINE_CHARS])
        return True

    def _report_suppressed(self) -> None:
        if self.suppressed:
            logger.warning(
                "%d client errors were not logged: over the budget of %d lines per %g s",
                self.suppressed,
                self.lines,
                self.seconds,
            )
            self.suppressed = 0

    def _report_later(self) -> None:
        """Log the count once a line fits again, even if no mistake comes then (one timer at a time)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # Outside an event loop: the count waits for the next line that fits.
        if self._report is not None and self._report_loop is loop:
            return
        self._report, self._report_loop = loop.call_later(self.seconds / self.lines, self._report_due), loop

    def _report_due(self) -> None:
        self._report = None
        self._refill()
        if not self.suppressed:
            return
        if self.tokens < 1:
            self._report_later()
            return
        self.tokens -= 1
        self._report_suppressed()


#: The process's budget for client mistakes (see ConnectionMixin.send_error).
mistakes = MistakeLog()
