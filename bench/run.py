"""Benchmark hypergen-consumers against fair baselines, a peer (chanx) and the websockets floor.

    python bench/run.py                 # full run, about 35 minutes on 2 quiet cores
    python bench/run.py --quick         # every endpoint once, about 2 minutes
    python bench/run.py --docs          # ... and write the results into docs/performance.rst

Starts real server processes (daphne; uvicorn as a second column; bench/floor.py for the
``websockets`` floor) on loopback and runs the load from a separate client process
(bench/load.py). Within each repetition every endpoint of a scenario is measured, in an
order rotated between repetitions, so ratios are paired per repetition: each ratio is taken
within one repetition, and its median (and range) over the repetitions is reported.
Writes bench/results/latest.json (quick.json for --quick); bench/report.py turns that file
into the tables of docs/performance.rst.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOAD = BENCH / "load.py"
#: PYTHONPATH as given comes last: packages installed aside for the benchmark (``pip install
#: --target DIR uvicorn chanx ...`` and ``PYTHONPATH=DIR``) are found, this tree's package first.
EXTRA_PATH = os.environ.get("PYTHONPATH", "")
ENV = {
    **os.environ,
    "PYTHONPATH": ":".join(filter(None, [str(BENCH), str(ROOT), EXTRA_PATH])),
    "DJANGO_SETTINGS_MODULE": "benchsite.settings",
}

sys.path.insert(0, str(BENCH))
import report  # noqa: E402
from processes import free_port, redis_server, stop, wait_for_port  # noqa: E402

ROUNDTRIP = [
    "raw_echo",
    "raw_echo_nohop",
    "raw_render",
    "raw_render_nohop",
    "upstream",
    "ours_async",
    "ours_async_noreplay",
    "ours_sync",
    "ours_function",
    "ours_command",
    "chanx",
    "floor",
]
FANOUT = [
    "raw_group_send",
    "raw_group_send_nohop",
    "raw_local_send",
    "upstream",
    "ours_async",
    "ours_async_noreplay",
    "ours_sync",
    "ours_function",
    "ours_presence",
    "chanx",
    "floor",
]
# Handshakes per second in a burst: what group_add costs, and what presence adds to it.
CONNECT = ["raw_group_send_nohop", "ours_async", "ours_presence"]
MEMORY = ["raw_echo", "raw_render_nohop", "upstream", "ours_async", "ours_sync", "chanx", "floor"]
# These render the same template and must put the same bytes on the wire (checked while measuring).
# ours_async speaks client.js's delivery protocol (a position command ends each group frame);
# ours_async_noreplay (replay_frames = 0, no frame ids) is the same consumer without it.
SAME_BYTES = [
    "raw_render",
    "raw_render_nohop",
    "raw_group_send",
    "raw_group_send_nohop",
    "raw_local_send",
    "upstream",
    "ours_async_noreplay",
    "ours_sync",
    "ours_function",
    "floor",
]
FIRST_FANOUT_FRAME = '[["hypergen.morph","t","<span>n = 1</span>"]]'
PACKAGES = [
    "django",
    "channels",
    "daphne",
    "uvicorn",
    "channels-redis",
    "redis",
    "django-hypergen",
    "pydantic",
    "chanx",
    "websockets",
    "twisted",
]


def protocol(endpoint: str) -> str:
    if endpoint == "chanx":
        return "chanx"
    # Class consumers' frames start with the handler's name (docs/protocol.rst); @consumer functions' do not.
    if endpoint in ("ours_async", "ours_presence"):
        return "delivery"  # As client.js talks: frame ids, acks, replay positions.
    return "named" if endpoint in ("ours_async_noreplay", "ours_sync") else "hypergen"


@contextlib.contextmanager
def server(
    kind: str, layer: str = "memory", redis_url: str = "", env: dict[str, str] | None = None
) -> Iterator[tuple[int, int]]:
    """A daphne, uvicorn or floor (bench/floor.py) process on a free port; yields (port, pid)."""
    port = free_port()
    if kind == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "benchsite.asgi:application"]
    elif kind == "uvicorn":
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "benchsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "websockets",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:
        command = [sys.executable, str(BENCH / "floor.py"), str(port)]
    environment = {**ENV, "BENCH_LAYER": layer, "BENCH_REDIS_URL": redis_url, **(env or {})}
    process = subprocess.Popen(
        command, cwd=BENCH, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process)
        yield port, process.pid
    finally:
        stop(process)


def load(*args: object, endpoint: str) -> dict:
    command = [sys.executable, str(LOAD), "--protocol", protocol(endpoint), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)
    if result.returncode != 0:
        raise RuntimeError(f"load {args} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def url(ports: dict[str, int], scenario: str, endpoint: str) -> str:
    port = ports["floor"] if endpoint == "floor" else ports["app"]
    return f"ws://127.0.0.1:{port}/ws/{scenario}/{endpoint}/"


def rotated(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


failures: list[str] = []


def check_wire(wire: dict) -> None:
    """Every renderer must send the same bytes, or the comparison is not like for like."""
    with server("daphne") as (app, _), server("floor") as (floor, _):
        ports = {"app": app, "floor": floor}
        for endpoint in ROUNDTRIP:
            wire[endpoint] = load("sample", url(ports, "roundtrip", endpoint), endpoint=endpoint)["reply"]
    for endpoint in SAME_BYTES:
        if endpoint in wire and wire[endpoint] != wire["ours_async_noreplay"]:
            failures.append(
                f"wire: {endpoint} sent {wire[endpoint]!r}, ours_async_noreplay sent {wire['ours_async_noreplay']!r}"
            )


def roundtrip(config: argparse.Namespace, runs: dict) -> None:
    for kind in config.servers:
        with server(kind) as (app, _), server("floor") as (floor, _):
            ports = {"app": app, "floor": floor}
            for rep in range(config.reps):
                for connections in (1, 50):
                    for endpoint in rotated(ROUNDTRIP, rep):
                        result = load(
                            "roundtrip",
                            url(ports, "roundtrip", endpoint),
                            "--connections",
                            connections,
                            "--seconds",
                            config.seconds,
                            endpoint=endpoint,
                        )
                        runs[f"roundtrip/{connections}conn/{kind}"][endpoint].append({**result, "rep": rep})


def fanout(config: argparse.Namespace, runs: dict, redis_url: str | None) -> None:
    combos = [("memory", 1)]
    if redis_url:
        combos += (
            [("redis", 1), ("pubsub", 1)]
            if config.quick
            else [("redis", 1), ("redis", 2), ("pubsub", 1), ("pubsub", 2)]
        )
    for layer, processes in combos:
        for receivers in config.receivers:
            for rep in range(config.fanout_reps):
                endpoints = (
                    FANOUT
                    if not config.quick or layer == "memory"
                    else ["ours_async", "ours_async_noreplay", "ours_presence", "raw_group_send_nohop"]
                )
                if layer != "memory":  # raw_local_send reaches its own process only: the in-memory ceiling.
                    endpoints = [endpoint for endpoint in endpoints if endpoint != "raw_local_send"]
                for endpoint in rotated(endpoints, rep):
                    # Fresh servers per run: a slow endpoint's backlog (upstream's sync consumer
                    # queues on Channels' one thread-sensitive executor) must not delay the next.
                    key = f"fanout/{receivers}recv/{layer}/{processes}proc"
                    with contextlib.ExitStack() as stack:
                        kinds = ["floor"] if endpoint == "floor" else ["daphne"] * processes
                        ports = [stack.enter_context(server(kind, layer, redis_url or ""))[0] for kind in kinds]
                        scenario_urls = [f"ws://127.0.0.1:{port}/ws/fanout/{endpoint}/" for port in ports]
                        try:
                            result = load(
                                "fanout",
                                scenario_urls[0],
                                *scenario_urls,
                                "--receivers",
                                receivers,
                                "--messages",
                                max(config.messages, config.messages * 500 // receivers),
                                endpoint=endpoint,
                            )
                        except RuntimeError as exc:  # Recorded and reported, not hidden.
                            cause = str(exc).strip().splitlines()[-1]  # The exception, not the traceback's head.
                            failures.append(f"{key} {endpoint}: {cause}"[:500])
                            continue
                    frame = result.pop("first_frame")
                    if endpoint in SAME_BYTES and frame != FIRST_FANOUT_FRAME:
                        failures.append(f"{key} {endpoint}: sent {frame!r}, not {FIRST_FANOUT_FRAME!r}")
                    runs[key][endpoint].append({**result, "rep": rep})


def connect_rate(config: argparse.Namespace, runs: dict, redis_url: str | None) -> None:
    """A burst of handshakes to one group, presence on versus off (fresh server per run)."""
    layers = ["memory"] + (["redis", "pubsub"] if redis_url else [])
    for layer in layers:
        for rep in range(config.fanout_reps):
            for endpoint in rotated(CONNECT, rep):
                key = f"connect/{config.burst}conn/{layer}"
                with server("daphne", layer, redis_url or "") as (port, _):
                    try:
                        result = load(
                            "connect",
                            f"ws://127.0.0.1:{port}/ws/fanout/{endpoint}/",
                            "--connections",
                            config.burst,
                            endpoint=endpoint,
                        )
                    except RuntimeError as exc:
                        failures.append(f"{key} {endpoint}: {str(exc).strip().splitlines()[-1]}"[:500])
                        continue
                runs[key][endpoint].append({**result, "rep": rep})


def memory(config: argparse.Namespace, runs: dict) -> None:
    for rep in range(config.reps):
        for endpoint in rotated(MEMORY, rep):
            with server("floor" if endpoint == "floor" else "daphne") as (port, pid):
                ports = {"app": port, "floor": port}
                load(
                    "roundtrip",
                    url(ports, "roundtrip", endpoint),
                    "--connections",
                    1,
                    "--seconds",
                    0.2,
                    endpoint=endpoint,
                )
                before = rss_kib(pid)
                holder = subprocess.Popen(
                    [
                        sys.executable,
                        str(LOAD),
                        "--protocol",
                        protocol(endpoint),
                        "idle",
                        url(ports, "roundtrip", endpoint),
                        "--connections",
                        str(config.idle),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=ENV,
                )
                json.loads(holder.stdout.readline())
                time.sleep(0.5)  # Let the server finish every handshake before reading its RSS.
                after = rss_kib(pid)
                holder.communicate("", timeout=120)
            runs[f"memory/{config.idle}idle"][endpoint].append(
                {"kib_per_connection": (after - before) / config.idle, "rep": rep}
            )


def handler_cost(runs: dict) -> None:
    """What one message of the benchmark costs hypergen-consumers, step by step, in process (µs)."""
    sys.path[:0] = [str(BENCH), str(ROOT)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django

    django.setup()
    from hypergen.liveview import dumps, loads

    from benchsite.consumers import OursAsync, morph, template
    from hypergen_consumers.connection.lifecycle import build_request
    from hypergen_consumers.connection.rendering import render_sync

    request = build_request({"type": "websocket", "path": "/", "headers": []})
    options = dict(request=request, target_id="t", user_plugins=(), matched_perms=frozenset(), owner="bench")
    spec = OursAsync._handlers["render"]

    def us(func) -> float:
        number = 20_000
        return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6

    state = us(lambda: render_sync(lambda n: None, [5], {}, **options))
    steps = {
        "decode_us": us(lambda: loads('{"args": [5], "meta": {}}')),
        "validate_us": us(lambda: spec.bind([5], {})),
        "rendering_state_us": state,
        "template_us": us(lambda: render_sync(template, [5], {}, **options)) - state,
        "encode_us": us(lambda: dumps([["hypergen.morph", "t", "<span>n = 5</span>"]])),
        "raw_render_us": us(lambda: morph(request, 5)),
    }
    runs["inprocess/steps"]["ours_async"].append({**steps, "rep": 0})


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        found["redis-server"] = next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())
    return found


def summarise(runs: dict) -> dict:
    """Median of every metric per endpoint, keeping each repetition's headline for pairing."""
    summary: dict = {}
    for key, by_endpoint in runs.items():
        headline = report.HEADLINE[key.split("/")[0]]
        summary[key] = {
            endpoint: {
                **{metric: statistics.median(r[metric] for r in results) for metric in results[0] if metric != "rep"},
                "by_rep": {str(r["rep"]): r[headline] for r in results},
            }
            for endpoint, results in by_endpoint.items()
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every endpoint once, about 2 minutes")
    parser.add_argument("--no-redis", action="store_true", help="skip the channels-redis fan-out scenarios")
    parser.add_argument("--docs", action="store_true", help="write the results into docs/performance.rst")
    parser.add_argument("--reps", type=int, help="repetitions of every scenario (to try the full matrix quickly)")
    parser.add_argument("--seconds", type=float, help="seconds per round-trip measurement")
    config = parser.parse_args()
    reps, seconds = config.reps, config.seconds
    config.servers = ["daphne"] if config.quick else ["daphne", "uvicorn"]
    if "uvicorn" in config.servers and importlib.util.find_spec("uvicorn") is None:
        print("uvicorn is not installed, so only daphne is measured: bash scripts/bench.sh installs it.")
        config.servers.remove("uvicorn")
    config.reps = reps or (1 if config.quick else 3)
    config.fanout_reps = reps or (1 if config.quick else 3)
    config.seconds = seconds or (1 if config.quick else 3)
    config.receivers = [100] if config.quick else [100, 500]
    config.messages = 5 if config.quick else 20  # per 500 receivers; more for fewer, so each run lasts
    config.idle = 200 if config.quick else 1000
    config.burst = 500 if config.quick else 1000

    runs: dict = defaultdict(lambda: defaultdict(list))
    wire: dict = {}
    began = time.monotonic()
    check_wire(wire)
    roundtrip(config, runs)
    with contextlib.ExitStack() as stack:
        use_redis = shutil.which("redis-server") and not config.no_redis
        redis_url = stack.enter_context(redis_server()) if use_redis else None
        fanout(config, runs, redis_url)
        connect_rate(config, runs, redis_url)
    memory(config, runs)
    handler_cost(runs)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": versions(),
        "quick": config.quick,
        "repetitions": {
            "roundtrip": config.reps,
            "fanout": config.fanout_reps,
            "memory": config.reps,
            "connect": config.fanout_reps,
        },
        "seconds": time.monotonic() - began,
        "wire": wire,
        "scenarios": summarise(runs),
        "failures": failures,
    }
    print(report.text_tables(result))
    for failure in failures:
        print("FAILED:", failure)
    path = BENCH / "results" / ("quick.json" if config.quick else "latest.json")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {path.relative_to(ROOT)} in {result['seconds']:.0f}s")
    if config.docs:
        report.write_docs(result)
        print(f"written {report.DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
