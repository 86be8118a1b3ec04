"""One dashboard page's picture of every process, built from the snapshots they publish.

Each page's socket keeps its own ``Board``: the latest snapshot of each process (a process
silent for ``STALE_AFTER`` intervals drops out), the frames/s and errors/s of the last
minutes for the charts, and a bounded log of events. Nothing here touches the network.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

__all__ = ["Board", "HISTORY", "MAX_LOG", "STALE_AFTER"]

#: Chart points kept (one per snapshot round: a few minutes).
HISTORY = 160
#: Event log lines kept per page.
MAX_LOG = 200
#: A process that sent nothing for this many intervals is gone.
STALE_AFTER = 3.5


class Board:
    """The latest snapshot per process, chart history and the event log."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.processes: dict[str, dict[str, Any]] = {}
        self._previous: dict[str, dict[str, Any]] = {}  # id -> its previous snapshot
        self._rates: dict[str, tuple[float, float]] = {}  # id -> (frames/s, errors/s)
        self._consumer_rates: dict[str, dict[str, float]] = {}  # id -> consumer -> frames/s
        self.history: deque[tuple[float, float, float]] = deque(maxlen=HISTORY)  # (at, frames/s, errors/s)
        self.log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._last_point = 0.0

    def add(self, snapshot: dict[str, Any]) -> None:
        """Take one process's snapshot: its rates since its previous one, its events."""
        pid = snapshot["id"]
        before = self._previous.get(pid)
        if before is not None and snapshot["at"] > before["at"]:
            seconds = float(snapshot["at"] - before["at"])

            def per_second(now: Any, then: Any) -> float:
                return max(0.0, float(now - then) / seconds)

            self._rates[pid] = (
                per_second(snapshot["frames"], before["frames"]),
                per_second(snapshot["errors"], before["errors"]),
            )
            self._consumer_rates[pid] = {
                name: per_second(stats["frames"], before["consumers"].get(name, {}).get("frames", 0))
                for name, stats in snapshot["consumers"].items()
            }
        self._previous[pid] = snapshot
        self.processes[pid] = {**snapshot, "received": time.monotonic()}
        for event in snapshot.get("events", []):
            self.log.appendleft({**event, "host": snapshot["host"], "pid": snapshot["pid"]})
        self.drop_stale()
        now = time.monotonic()
        if now - self._last_point >= self.interval * 0.9:
            self._last_point = now
            self.history.append((time.time(), self.frames_per_second(), self.errors_per_second()))

    def note(self, kind: str, detail: str, user: str | None) -> None:
        """A line of this page's own (an operation it did), before any snapshot carries it."""
        self.log.appendleft({"at": time.time(), "kind": kind, "consumer": "", "detail": detail, "user": user})

    def drop_stale(self) -> None:
        """Forget processes that stopped publishing (stopped, crashed, or cut off)."""
        limit = time.monotonic() - self.interval * STALE_AFTER
        for pid in [pid for pid, process in self.processes.items() if process["received"] < limit]:
            del self.processes[pid]
            self._previous.pop(pid, None)
            self._rates.pop(pid, None)
            self._consumer_rates.pop(pid, None)

    # --- what the page shows ------------------------------------------------------------

    def rate(self, pid: str) -> tuple[float, float]:
        return self._rates.get(pid, (0.0, 0.0))

    def frames_per_second(self) -> float:
        return sum(self.rate(pid)[0] for pid in self.processes)

    def errors_per_second(self) -> float:
        return sum(self.rate(pid)[1] for pid in self.processes)

    def connections(self) -> int:
        return sum(int(process["connections"]) for process in self.processes.values())

    def sockets(self) -> list[dict[str, Any]]:
        """Every listed socket of every process, with its process."""
        return [
            {**entry, "host": process["host"], "pid": process["pid"]}
            for process in self.ordered_processes()
            for entry in process["sockets"]
        ]

    def ordered_processes(self) -> list[dict[str, Any]]:
        return sorted(self.processes.values(), key=lambda process: (process["host"], process["pid"]))

    def consumers(self) -> list[dict[str, Any]]:
        """Per consumer class, summed over processes (p50/p99: the worst process's)."""
        merged: dict[str, dict[str, Any]] = {}
        for pid, process in self.processes.items():
            rates = self._consumer_rates.get(pid, {})
            for name, stats in process["consumers"].items():
                entry = merged.setdefault(
                    name,
                    {
                        "name": name,
                        "route": stats["route"],
                        "connections": 0,
                        "frames": 0,
                        "errors": {},
                        "p50": None,
                        "p99": None,
                        "rate": 0.0,
                    },
                )
                entry["connections"] += stats["connections"]
                entry["frames"] += stats["frames"]
                entry["rate"] += rates.get(name, 0.0)
                for code, count in stats["errors"].items():
                    entry["errors"][code] = entry["errors"].get(code, 0) + count
                for key in ("p50", "p99"):
                    if stats[key] is not None:
                        entry[key] = max(entry[key] or 0.0, stats[key])
        return sorted(merged.values(), key=lambda entry: entry["name"])

    def groups(self) -> list[dict[str, Any]]:
        """Per group: its consumer, member count and who is there (users, by name)."""
        merged: dict[str, dict[str, Any]] = {}
        for entry in self.sockets():
            group = merged.setdefault(
                entry["group"],
                {
                    "group": entry["group"],
                    "consumer": entry["consumer"],
                    "members": 0,
                    "users": {},
                    "presence": entry["presence"],
                },
            )
            group["members"] += 1
            name = entry["user"] or "anonymous"
            group["users"][name] = group["users"].get(name, 0) + 1
        return sorted(merged.values(), key=lambda group: (-group["members"], group["group"]))
