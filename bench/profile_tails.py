"""Where the round-trip tail comes from: full garbage collections, with and without gc.freeze().

    python bench/profile_tails.py                          # ours_sync and others, daphne, 3 repetitions
    python bench/profile_tails.py --servers daphne uvicorn --endpoints ours_sync --reps 5

Runs the 50-connection round trip of bench/run.py on each endpoint twice per repetition,
alternating: once as Python starts, once with ``gc.freeze()`` called after the site is
loaded (bench/benchsite/gc_knobs.py), and logs every full (generation 2) collection the
server makes during the load. Prints messages/s, p50/p99 and the full collections
(how many per second, their median and longest pause), medians over the repetitions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from run import load, rotated, server


def measure(kind: str, endpoint: str, freeze: bool, config: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "gc.log"
        env = {"BENCH_GC_LOG": str(log), **({"BENCH_GC_FREEZE": "1"} if freeze else {})}
        with server(kind, env=env) as (port, _):
            before = len(log.read_text().split()) if log.exists() else 0
            result = load(
                "roundtrip",
                f"ws://127.0.0.1:{port}/ws/roundtrip/{endpoint}/",
                "--connections",
                config.connections,
                "--seconds",
                config.seconds,
                endpoint=endpoint,
            )
            pauses = [float(x) for x in log.read_text().split()[before:]] if log.exists() else []
    return {
        **result,
        "full_gcs_per_s": len(pauses) / result["seconds"],
        "pause_median_ms": statistics.median(pauses) if pauses else 0.0,
        "pause_max_ms": max(pauses, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", nargs="+", default=["daphne"])
    parser.add_argument("--endpoints", nargs="+", default=["ours_sync", "ours_async", "raw_render", "chanx"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--connections", type=int, default=50)
    config = parser.parse_args()
    runs: dict = defaultdict(list)
    cases = [
        (kind, endpoint, freeze) for kind in config.servers for endpoint in config.endpoints for freeze in (False, True)
    ]
    for rep in range(config.reps):
        for kind, endpoint, freeze in rotated(cases, rep):
            runs[(kind, endpoint, freeze)].append(measure(kind, endpoint, freeze, config))
    metrics = ["messages_per_s", "p50_ms", "p99_ms", "full_gcs_per_s", "pause_median_ms", "pause_max_ms"]
    print(f"{'server':<8} {'endpoint':<14} {'gc.freeze':<9} " + " ".join(f"{m:>15}" for m in metrics))
    for (kind, endpoint, freeze), results in runs.items():
        figures = [statistics.median(r[m] for r in results) for m in metrics]
        print(f"{kind:<8} {endpoint:<14} {str(freeze):<9} " + " ".join(f"{f:>15.1f}" for f in figures))


if __name__ == "__main__":
    main()
