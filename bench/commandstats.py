"""Redis commands per broadcast: what one group frame costs Redis, by command.

    python bench/commandstats.py                      # 500 receivers on 2 daphne processes
    python bench/commandstats.py --receivers 100 --processes 1 --layer pubsub

Starts a redis-server of its own and daphne processes on the channels-redis layer, then runs
bench/load.py's fan-out twice with the same receivers: once with 1 message, once with
1 + ``--messages``. Connecting and leaving cost the same in both runs, so the difference in
``INFO commandstats`` (and Redis's CPU time, bytes in and out) is what the extra broadcasts cost; it is divided by their number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys

from processes import redis_server
from run import BENCH, load, server

#: Commands a pool runs when it opens a connection: how many connections a run opens varies.
CONNECTION_SETUP = {"hello", "client|setinfo", "client|setname", "select", "script|load", "ping"}


def redis_counters(redis_url: str) -> dict[str, int]:
    """Calls per command, Redis CPU time (``usec``) and bytes in and out, since Redis started."""
    port = redis_url.rsplit(":", 1)[1]
    out = subprocess.run(["redis-cli", "-p", port, "INFO", "all"], capture_output=True, text=True).stdout
    counters = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_") :].split(":", 1)
            values = dict(field.split("=") for field in fields.split(","))
            if name not in CONNECTION_SETUP:
                counters[name] = int(values["calls"])
                counters["usec"] = counters.get("usec", 0) + int(values["usec"])
        elif line.startswith(("total_net_input_bytes:", "total_net_output_bytes:")):
            name, value = line.strip().split(":")
            counters[name] = int(value)
    return counters


def measure(
    layer: str, processes: int, receivers: int, messages: int, endpoint: str, root: str | None = None
) -> dict[str, float]:
    env = {"PYTHONPATH": f"{BENCH}:{root}"} if root else None
    with redis_server() as redis_url, contextlib.ExitStack() as stack:
        ports = [stack.enter_context(server("daphne", layer, redis_url, env=env))[0] for _ in range(processes)]
        urls = [f"ws://127.0.0.1:{port}/ws/fanout/{endpoint}/" for port in ports]
        totals = []
        for count in (1, 1 + messages):
            before = redis_counters(redis_url)
            load("fanout", urls[0], *urls, "--receivers", receivers, "--messages", count, endpoint=endpoint)
            after = redis_counters(redis_url)
            totals.append({name: after[name] - before.get(name, 0) for name in after})
    one, many = totals
    per = {name: (many.get(name, 0) - one.get(name, 0)) / messages for name in set(one) | set(many)}
    totals_only = ("usec", "total_net_input_bytes", "total_net_output_bytes")
    commands = {
        name: round(value, 1) for name, value in sorted(per.items()) if abs(value) >= 0.05 and name not in totals_only
    }
    return {
        "commands": round(sum(commands.values()), 1),
        "redis_usec": round(per.get("usec", 0)),
        "bytes_in": round(per.get("total_net_input_bytes", 0)),
        "bytes_out": round(per.get("total_net_output_bytes", 0)),
        "by_command": commands,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", choices=["redis", "pubsub"], default="redis")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--endpoint", default="ours_async")
    parser.add_argument("--package-root", help="serve hypergen_consumers from another checkout (say, before a change)")
    config = parser.parse_args()
    result = measure(
        config.layer, config.processes, config.receivers, config.messages, config.endpoint, config.package_root
    )
    print(
        json.dumps(
            {
                "layer": config.layer,
                "processes": config.processes,
                "receivers": config.receivers,
                "endpoint": config.endpoint,
                "per_broadcast": result,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
