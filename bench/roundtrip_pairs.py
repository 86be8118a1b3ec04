"""Round trip of a handler that renders nothing, paired with a plain Channels echo in the same run.

    python bench/roundtrip_pairs.py [--before CHECKOUT] [--servers daphne uvicorn] [--reps 3]

For each server and each connection count, every repetition measures ``ours_command`` (a
``@consumer`` function that sends one command: typed input, no HTML) and ``raw_echo_nohop``
(Channels' JSON echo without its per-message thread hop) on the same server process, one
right after the other, and reports their ratio per repetition and its median. With
``--before``, a second server runs another checkout's ``hypergen_consumers`` (this tree's
``bench/benchsite`` serves both), measured alternately with this tree's, so a change is
judged against the code before it on the same machine at the same moment (this machine is
shared and noisy: compare ratios, not messages per second). Writes ``bench/results/roundtrip_pairs.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402

ENDPOINTS = ["raw_echo_nohop", "ours_command"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="another checkout whose hypergen_consumers serves the 'before' rows")
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn"])
    parser.add_argument("--connections", nargs="+", type=int, default=[1, 50])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3)
    config = parser.parse_args()
    trees = {"after": BENCH.parent}
    if config.before:
        trees["before"] = Path(config.before).resolve()
    rates: dict[str, list[float]] = {}
    for kind in config.servers:
        with contextlib.ExitStack() as stack:
            ports = {}
            for name, root in trees.items():
                path = f"{root / 'bench'}:{root}"
                ports[name] = stack.enter_context(run.server(kind, env={"PYTHONPATH": path}))[0]
            for rep in range(config.reps):
                for connections in config.connections:
                    for name in run.rotated(list(trees), rep):
                        for endpoint in run.rotated(ENDPOINTS, rep):
                            url = f"ws://127.0.0.1:{ports[name]}/ws/roundtrip/{endpoint}/"
                            args = ("roundtrip", url, "--connections", connections, "--seconds", config.seconds)
                            result = run.load(*args, endpoint=endpoint)
                            key = f"{kind}/{connections}conn/{name}/{endpoint}"
                            rates.setdefault(key, []).append(result["messages_per_s"])
    summary = {}
    for kind in config.servers:
        for connections in config.connections:
            for name in trees:
                ours = rates[f"{kind}/{connections}conn/{name}/ours_command"]
                raw = rates[f"{kind}/{connections}conn/{name}/raw_echo_nohop"]
                ratios = [a / b for a, b in zip(ours, raw)]
                row = f"{kind}/{connections}conn/{name}"
                summary[row] = {"ratios": ratios, "median": statistics.median(ratios), "ours": ours, "raw": raw}
                print(
                    f"{row:24s} ours_command / raw_echo_nohop: "
                    + ", ".join(f"{ratio:.2f}" for ratio in ratios)
                    + f" (median {statistics.median(ratios):.2f}; ours {statistics.median(ours):,.0f}/s,"
                    f" raw {statistics.median(raw):,.0f}/s)"
                )
    path = BENCH / "results" / "roundtrip_pairs.json"
    path.write_text(json.dumps({"trees": {k: str(v) for k, v in trees.items()}, "rows": summary}, indent=1) + "\n")
    print(f"written {path.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
