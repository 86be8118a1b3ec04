"""Fan-out per server: ours against the server's own ceiling (``raw_local_send``) and the floor.

    python bench/fanout_servers.py                         # daphne and uvicorn, 500 receivers
    python bench/fanout_servers.py --before /path/to/tree  # ... and ours from another checkout

One sender, ``--receivers`` receivers in one group. Per server: ``raw_local_send`` (a plain
Channels consumer that sends to every local socket itself: no layer, one encode, N sends,
the most that server gives a Channels app), ``ours_async`` (client.js's delivery protocol:
frame ids, replay positions) in memory and over pub/sub with 2 processes, and the
``websockets`` floor (bench/floor.py). ``--before`` adds the same ``ours`` rows served from
another checkout's ``hypergen_consumers`` (say, main before a change), so a change is
measured against what it replaces in the same run. Rows are run in an order rotated per
repetition, and every ratio is taken within one repetition (a shared machine is noisy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
from pathlib import Path

from processes import redis_server
from run import BENCH, EXTRA_PATH, load, rotated, server


def rows(servers: list[str], before: str | None, pubsub: bool) -> list[tuple[str, str, str, str, int, str | None]]:
    """(row name, server, endpoint, layer, processes, package root or None for this tree)."""
    found = [("floor", "floor", "floor", "memory", 1, None)]
    for kind in servers:
        found.append((f"{kind}/raw_local", kind, "raw_local_send", "memory", 1, None))
        trees = [("", None)] + ([("@before", before)] if before else [])
        for suffix, root in trees:
            found.append((f"{kind}/ours_memory{suffix}", kind, "ours_async", "memory", 1, root))
            if pubsub:
                found.append((f"{kind}/ours_pubsub_2proc{suffix}", kind, "ours_async", "pubsub", 2, root))
    return found


def run_row(row: tuple[str, str, str, str, int, str | None], redis_url: str, receivers: int, messages: int) -> float:
    _, kind, endpoint, layer, processes, root = row
    env = {"PYTHONPATH": ":".join(filter(None, [str(BENCH), root, EXTRA_PATH]))} if root else None
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(server(kind, layer, redis_url, env=env))[0] for _ in range(processes)]
        urls = [f"ws://127.0.0.1:{port}/ws/fanout/{endpoint}/" for port in ports]
        result = load("fanout", urls[0], *urls, "--receivers", receivers, "--messages", messages, endpoint=endpoint)
    return float(result["deliveries_per_s"])


def ratios(by_rep: list[dict[str, float]], pairs: list[tuple[str, str]]) -> dict[str, list[float]]:
    """``numerator / denominator`` per repetition, for each pair measured in every repetition."""
    found: dict[str, list[float]] = {}
    for name, denominator in pairs:
        values = [rep[name] / rep[denominator] for rep in by_rep if name in rep and denominator in rep]
        if values:
            found[f"{name} / {denominator}"] = [round(value, 2) for value in values]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn"])
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--before", help="another checkout whose hypergen_consumers serves the @before rows")
    parser.add_argument("--no-pubsub", action="store_true")
    config = parser.parse_args()
    pubsub = not config.no_pubsub and shutil.which("redis-server") is not None
    table = rows(config.servers, config.before, pubsub)
    by_rep: list[dict[str, float]] = []
    with redis_server() if pubsub else contextlib.nullcontext("") as redis_url:
        for rep in range(config.reps):
            measured = {}
            for row in rotated(table, rep):
                measured[row[0]] = run_row(row, redis_url, config.receivers, config.messages)
                print(f"rep {rep} {row[0]}: {measured[row[0]]:,.0f} deliveries/s", file=sys.stderr, flush=True)
            by_rep.append(measured)
    pairs: list[tuple[str, str]] = []
    for kind in config.servers:
        pairs.append((f"{kind}/raw_local", "floor"))
        for name in [row[0] for row in table if row[1] == kind and "/ours" in row[0]]:
            pairs += [(name, f"{kind}/raw_local"), (name, "floor")]
            if config.before and not name.endswith("@before"):
                pairs.append((name, f"{name}@before"))
    result = {
        "receivers": config.receivers,
        "messages": config.messages,
        "reps": config.reps,
        "deliveries_per_s": {name: round(statistics.median(rep[name] for rep in by_rep)) for name in by_rep[0]},
        "ratios_per_rep": ratios(by_rep, pairs),
    }
    print(json.dumps(result, indent=1))
    out = BENCH / "results" / "fanout_servers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out.relative_to(Path(BENCH).parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
