"""What observing costs: round trip with metrics off, on, and with the dashboard's collecting and snapshots.

    python bench/observability.py            # 5 repetitions x 3 modes x 2 loads, about 2 minutes

One daphne process per mode (``BENCH_OBSERVE``: ``off`` = prometheus_client blocked, as if not
installed; ``metrics``; ``dashboard`` = metrics and the dashboard app, which collects every
frame and publishes a snapshot every 1.5 s), measured in an order rotated per repetition; the
load (bench/load.py, the delivery protocol of client.js against ``ours_async``) runs in its own
process. Prints the server's CPU time per message (user + system time of the daphne process,
read from /proc around each run: robust on a machine others share, where messages/s is not)
and messages/s, each as the median and the ratio to ``off`` (median and range of the paired
ratios). Writes bench/results/observability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import load, rotated, server  # noqa: E402

MODES = ["off", "metrics", "dashboard"]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    config = parser.parse_args()
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    servers, pids = {}, {}
    stack = []
    try:
        for mode in MODES:
            context = server("daphne", env={"BENCH_OBSERVE": mode})
            servers[mode], pids[mode] = context.__enter__()
            stack.append(context)
        for rep in range(config.reps):
            for connections in (1, 50):
                for mode in rotated(MODES, rep):
                    url = f"ws://127.0.0.1:{servers[mode]}/ws/roundtrip/ours_async/"
                    before = cpu_seconds(pids[mode])
                    result = load(
                        "roundtrip",
                        url,
                        "--connections",
                        connections,
                        "--seconds",
                        config.seconds,
                        endpoint="ours_async",
                    )
                    cpu_us = (cpu_seconds(pids[mode]) - before) / result["messages"] * 1e6
                    entry = runs.setdefault(f"{connections}conn", {}).setdefault(mode, {"cpu_us": [], "rate": []})
                    entry["cpu_us"].append(cpu_us)
                    entry["rate"].append(result["messages_per_s"])
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)
    print(
        f"{'load':<8} {'mode':<10} {'server CPU us/msg':>18} {'vs off [min, max]':>24} {'msg/s':>8} {'vs off [min, max]':>24}"
    )
    for scenario, modes in runs.items():
        for mode in MODES:
            row = f"{scenario:<8} {mode:<10}"
            for key, width in (("cpu_us", 18), ("rate", 8)):
                ratios = [value / base for value, base in zip(modes[mode][key], modes["off"][key])]
                row += (
                    f" {statistics.median(modes[mode][key]):>{width},.1f} {statistics.median(ratios):>9.3f} "
                    f"[{min(ratios):.3f}, {max(ratios):.3f}]"
                )
            print(row)
    (BENCH / "results" / "observability.json").write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
