"""Benchmark hypergen-consumers side by side with plain Channels and upstream hypergen.

    python bench/run.py            # full run (several minutes)
    python bench/run.py --quick    # smoke run, under a minute

Starts real server processes (daphne; uvicorn as a second column) on loopback and runs the
load from a separate client process (bench/load.py). Every scenario measures all endpoints
in the same run, alternating their order between repetitions, and reports medians. Prints a
table and writes bench/results/latest.json with the ratios ours_*/raw and ours_*/upstream.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from collections import defaultdict
from pathlib import Path
from typing import Iterator

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOAD = BENCH / "load.py"
ENDPOINTS = ["raw", "upstream", "ours_async", "ours_sync", "ours_function"]
ENV = {**os.environ, "PYTHONPATH": f"{BENCH}:{ROOT}", "DJANGO_SETTINGS_MODULE": "benchsite.settings"}

sys.path.insert(0, str(ROOT))
from tests.servers import free_port, redis_server as redis_server_port, stop, wait_for_port  # noqa: E402


@contextlib.contextmanager
def server(kind: str, layer: str = "memory", redis_url: str = "") -> Iterator[tuple[int, int]]:
    port = free_port()
    if kind == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "benchsite.asgi:application"]
    else:
        command = [sys.executable, "-m", "uvicorn", "benchsite.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port), "--ws", "websockets", "--log-level", "warning", "--no-access-log"]
    env = {**ENV, "BENCH_LAYER": layer, "BENCH_REDIS_URL": redis_url}
    process = subprocess.Popen(command, cwd=BENCH, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield port, process.pid
    finally:
        stop(process)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    with redis_server_port() as port:
        yield f"redis://127.0.0.1:{port}"


def load(*args: object) -> dict:
    result = subprocess.run([sys.executable, str(LOAD), *map(str, args)], capture_output=True, text=True,
                            timeout=600, env=ENV)
    if result.returncode != 0:
        raise RuntimeError(f"load {args} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def url(port: int, scenario: str, endpoint: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/{scenario}/{endpoint}/"


def rotated(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def roundtrip(config: argparse.Namespace, runs: dict) -> None:
    for kind in config.servers:
        with server(kind) as (port, _):
            for rep in range(config.reps):
                for connections in (1, 50):
                    for endpoint in rotated(ENDPOINTS, rep):
                        result = load("roundtrip", url(port, "roundtrip", endpoint), "--connections", connections,
                                      "--seconds", config.seconds)
                        runs[f"roundtrip/{connections}conn/{kind}"][endpoint].append(result)


failures: list[str] = []


def fanout(config: argparse.Namespace, runs: dict, redis_url: str | None) -> None:
    combos = [("memory", 1)]
    if redis_url and not config.quick:
        combos += [("redis", 1), ("redis", 2), ("pubsub", 1), ("pubsub", 2)]
    for layer, processes in combos:
        for receivers in config.receivers:
            for rep in range(config.fanout_reps):
                for endpoint in rotated(ENDPOINTS, rep):
                    # Fresh servers per run: a slow endpoint's backlog (upstream's sync consumer
                    # queues on Channels' one thread-sensitive executor) must not delay the next.
                    with contextlib.ExitStack() as stack:
                        ports = [stack.enter_context(server("daphne", layer, redis_url or ""))[0]
                                 for _ in range(processes)]
                        try:
                            result = load("fanout", url(ports[0], "fanout", endpoint),
                                          *[url(port, "fanout", endpoint) for port in ports],
                                          "--receivers", receivers, "--messages", config.messages)
                        except RuntimeError as exc:  # Recorded and reported, not hidden.
                            cause = str(exc).strip().splitlines()[-1]  # The exception, not the traceback's head.
                            failures.append(f"fanout/{receivers}recv/{layer}/{processes}proc {endpoint}: {cause}"[:500])
                            continue
                    runs[f"fanout/{receivers}recv/{layer}/{processes}proc"][endpoint].append(result)


def memory(config: argparse.Namespace, runs: dict) -> None:
    for rep in range(config.reps):
        for endpoint in rotated(ENDPOINTS, rep):
            with server("daphne") as (port, pid):
                load("roundtrip", url(port, "roundtrip", endpoint), "--connections", 1, "--seconds", 0.2)
                before = rss_kib(pid)
                holder = subprocess.Popen([sys.executable, str(LOAD), "idle", url(port, "roundtrip", endpoint),
                                           "--connections", str(config.idle)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=ENV)
                json.loads(holder.stdout.readline())
                time.sleep(0.5)  # Let the server finish every handshake before reading its RSS.
                after = rss_kib(pid)
                holder.communicate("", timeout=120)
            runs[f"memory/{config.idle}idle"][endpoint].append({"kib_per_connection": (after - before) / config.idle})


def validation(runs: dict) -> None:
    """Per-message cost of the compiled pydantic validator, in process."""
    sys.path[:0] = [str(BENCH), str(ROOT)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django

    django.setup()
    from benchsite.consumers import OursAsync

    spec = OursAsync._handlers["render"]
    number = 100_000
    seconds = min(timeit.repeat(lambda: spec.bind([5], {}), number=number, repeat=5))
    runs["validation/bind"]["ours_async"].append({"us_per_message": seconds / number * 1e6})


HEADLINE = {"roundtrip": "messages_per_s", "fanout": "deliveries_per_s", "memory": "kib_per_connection",
            "validation": "us_per_message"}


def summarise(runs: dict) -> dict:
    summary: dict = {}
    for key, by_endpoint in runs.items():
        medians = {endpoint: {metric: statistics.median(r[metric] for r in results) for metric in results[0]}
                   for endpoint, results in by_endpoint.items()}
        headline = HEADLINE[key.split("/")[0]]
        for endpoint, figures in medians.items():
            if endpoint.startswith("ours"):
                for base in ("raw", "upstream"):
                    if base in medians and medians[base][headline]:
                        figures[f"{headline}_vs_{base}"] = figures[headline] / medians[base][headline]
        summary[key] = medians
    return summary


def print_table(summary: dict) -> None:
    print(f"{'scenario':<34} {'endpoint':<14} {'headline':>14} {'p50 ms':>8} {'p99 ms':>8} {'/raw':>6} {'/upstr':>6}")
    for key, medians in summary.items():
        headline = HEADLINE[key.split("/")[0]]
        for endpoint in ENDPOINTS:
            if endpoint not in medians:
                continue
            f = medians[endpoint]
            ratio = lambda base: f"{f[f'{headline}_vs_{base}']:.2f}" if f"{headline}_vs_{base}" in f else "-"  # noqa: E731
            print(f"{key:<34} {endpoint:<14} {f[headline]:>14.1f} {f.get('p50_ms', float('nan')):>8.2f} "
                  f"{f.get('p99_ms', float('nan')):>8.2f} {ratio('raw'):>6} {ratio('upstream'):>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run under a minute")
    parser.add_argument("--no-redis", action="store_true", help="skip the channels-redis fan-out scenarios")
    config = parser.parse_args()
    config.servers = ["daphne"] if config.quick else ["daphne", "uvicorn"]
    if "uvicorn" in config.servers and importlib.util.find_spec("uvicorn") is None:
        print("uvicorn is not installed, so only daphne is measured: bash scripts/bench.sh installs it.")
        config.servers.remove("uvicorn")
    config.reps = 1 if config.quick else 3
    config.fanout_reps = 1 if config.quick else 2
    config.seconds = 1 if config.quick else 3
    config.receivers = [100] if config.quick else [100, 1000]
    config.messages = 5 if config.quick else 20
    config.idle = 200 if config.quick else 1000

    runs: dict = defaultdict(lambda: defaultdict(list))
    began = time.monotonic()
    roundtrip(config, runs)
    with contextlib.ExitStack() as stack:
        use_redis = shutil.which("redis-server") and not config.no_redis
        redis_url = stack.enter_context(redis_server()) if use_redis else None
        fanout(config, runs, redis_url)
    memory(config, runs)
    validation(runs)
    summary = summarise(runs)
    print_table(summary)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "quick": config.quick, "seconds": time.monotonic() - began, "scenarios": summary, "failures": failures}
    for failure in failures:
        print("FAILED:", failure)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "latest.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten bench/results/latest.json in {result['seconds']:.0f}s")


if __name__ == "__main__":
    main()
