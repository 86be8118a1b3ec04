"""What a process costs at scale on the defaults: idle Redis, a frame on Redis, storage, resume storms.

    python bench/scale.py [--connections 300] [--seconds 15] [--rooms 2000] [--pages 100]

Every scenario runs a real daphne and a redis-server of its own on loopback, with the
channel layer configured as ``pip install hypergen-consumers[redis]`` leaves it (only
``hosts``: redis-py's timeouts and pool, channels-redis's ``capacity``), beside plain
Channels in the same run where there is a plain equivalent. Prints a table and writes
bench/results/scale.json. Numbers are from one noisy 2-core machine: read the ratios.

- idle: N quiet connections for S seconds: Redis commands/s and server CPU (ours, speaking
  client.js's protocol, vs a plain Channels consumer in a group).
- frame: server CPU per sender-only round trip on RedisChannelLayer, with the delivery
  protocol (frame ids claimed and replies recorded in Redis) and without it, and plain Channels.
- storage: bytes Redis holds per stored group frame, against the bytes of the frame itself.
- storm: CPU per resuming handshake of a page 200 group_send runs behind, against a fresh one,
  and a bystander's round-trip p50 while P pages resume at once (in-memory layer).
- presence: Redis commands/s of R idle one-member presence rooms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from websockets.asyncio.client import connect

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from processes import redis_server  # noqa: E402
from run import load, server  # noqa: E402

RESULTS = BENCH / "results" / "scale.json"
TICKS = 200


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_commands(url: str) -> int:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("stats")
        return int(info["total_commands_processed"])
    finally:
        await client.aclose()


def ws(port: int, endpoint: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{port}/ws/scale/{endpoint}/" + (f"?{query}" if query else "")


async def open_all(urls: list[str], batch: int = 100) -> list:
    sockets = []
    for start in range(0, len(urls), batch):
        sockets += await asyncio.gather(
            *(connect(u, max_queue=None, open_timeout=120) for u in urls[start : start + batch])
        )
    return sockets


async def drain(socket, until: float) -> list:
    frames = []
    while True:
        try:
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), max(0.01, until - time.monotonic()))))
        except (asyncio.TimeoutError, TimeoutError):
            return frames


# --- idle -----------------------------------------------------------------------------


async def idle_scenario(config: argparse.Namespace) -> dict:
    rows = {}
    for endpoint, query in (("storm", "hypergen_socket={}"), ("plain", "")):
        with redis_server() as url, server("daphne", "redis", url, env={"BENCH_DEFAULTS": "1"}) as (port, pid):
            urls = [ws(port, endpoint, query.format(uuid.uuid4().hex)) for _ in range(config.connections)]
            # Plain Channels bounds nothing: 100 handshakes at once overflow redis-py 8's pool of 100.
            sockets = await open_all(urls, batch=100 if endpoint == "storm" else 20)
            await asyncio.sleep(2)
            commands, cpu, began = await redis_commands(url), cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(config.seconds)
            elapsed = time.monotonic() - began
            rows[endpoint] = {
                "redis_commands_per_s": round((await redis_commands(url) - commands) / elapsed, 1),
                "server_cpu_percent": round(100 * (cpu_seconds(pid) - cpu) / elapsed, 1),
            }
            await asyncio.gather(*(socket.close() for socket in sockets))
    return {
        "connections": config.connections,
        "seconds": config.seconds,
        "ours": rows["storm"],
        "plain_channels": rows["plain"],
    }


# --- a frame on Redis -----------------------------------------------------------------


def frame_scenario(config: argparse.Namespace) -> dict:
    rows = {}
    with redis_server() as url, server("daphne", "redis", url, env={"BENCH_DEFAULTS": "1"}) as (port, pid):
        for endpoint in ("ours_async", "ours_async_noreplay", "raw_render_nohop"):
            target = f"ws://127.0.0.1:{port}/ws/roundtrip/{endpoint}/"
            cpu = cpu_seconds(pid)
            result = load("roundtrip", target, "--connections", 50, "--seconds", config.seconds / 3, endpoint=endpoint)
            messages = result["messages"]
            rows[endpoint] = {
                "server_cpu_us_per_message": round(1e6 * (cpu_seconds(pid) - cpu) / max(1, messages), 1),
                "messages_per_s": round(result["messages_per_s"]),
            }
    return rows


# --- storage --------------------------------------------------------------------------


async def storage_scenario(config: argparse.Namespace) -> dict:
    from redis import asyncio as aioredis

    with redis_server() as url, server("daphne", "redis", url, env={"BENCH_DEFAULTS": "1"}) as (port, _):
        target = f"ws://127.0.0.1:{port}/ws/fanout/ours_async/?hypergen_socket={uuid.uuid4().hex}"
        sender = await connect(target, max_queue=None)
        await sender.recv()
        uploads, sent = [], []
        for n in range(1, TICKS + 1):  # A broadcast handler's output: one group frame each.
            uploads.append(json.dumps({"args": ["render", n], "meta": {"id": n}}))
            await sender.send(uploads[-1])
            while True:
                frame = json.loads(await sender.recv())
                if frame and frame[0][0] == "hypergen.morph":
                    sent.append(
                        json.dumps([command for command in frame if not command[0].startswith("hypergen.websocket")])
                    )
                    break
        frame_bytes = statistics.mean(len(text) for text in sent)
        upload_bytes = statistics.mean(len(text) for text in uploads)
        client = aioredis.Redis.from_url(url)
        keys = [key async for key in client.scan_iter(match="*replay*") if await client.type(key) == b"stream"]
        used = sum([await client.memory_usage(key) or 0 for key in keys])
        entries = sum([await client.xlen(key) for key in keys])
        await client.aclose()
        await sender.close()
    per_entry = used / max(1, entries)
    return {
        "frames": entries,
        "bytes_per_stored_frame": round(per_entry),
        "bytes_per_group_frame": round(frame_bytes),
        "bytes_per_upload": round(upload_bytes),
        "stored_over_frame": round(per_entry / frame_bytes, 2),
    }


# --- resume storm ---------------------------------------------------------------------


async def bystander(port: int, stop: asyncio.Event, latencies: list[float]) -> None:
    async with connect(ws(port, "storm"), max_queue=None) as socket:
        n = 0
        while not stop.is_set():
            n += 1
            began = time.perf_counter()
            await socket.send(json.dumps({"args": ["render", n], "meta": {}}))
            while True:
                frame = json.loads(await socket.recv())
                if frame and frame[0][0] == "hypergen.morph" and f"n = {n}<" in frame[0][2]:
                    break
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)


async def storm_scenario(config: argparse.Namespace) -> dict:
    with server("daphne", "memory", env={"BENCH_DEFAULTS": "1"}) as (port, pid):
        ids = [uuid.uuid4().hex for _ in range(config.pages)]
        first = await open_all([ws(port, "storm", f"hypergen_socket={i}") for i in ids])
        positions = []
        for socket in first:
            frame = json.loads(await socket.recv())
            positions.append(next(c[1] for c in frame if c[0] == "hypergen.websocket.position"))
            await socket.close()
        async with connect(ws(port, "storm", f"hypergen_socket={uuid.uuid4().hex}"), max_queue=None) as filler:
            await filler.recv()
            await filler.send(json.dumps({"args": ["fill", TICKS], "meta": {"id": 1}}))
            while not any(c[0] == "filled" for c in json.loads(await filler.recv())):
                pass
        quiet: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(bystander(port, stop, quiet))
        await asyncio.sleep(2)
        stop.set()
        await task

        async def resume(urls: list[str]) -> tuple[float, float, list[float]]:
            latencies: list[float] = []
            stop = asyncio.Event()
            watcher = asyncio.create_task(bystander(port, stop, latencies))
            await asyncio.sleep(0.5)
            cpu, began = cpu_seconds(pid), time.monotonic()
            sockets = await open_all(urls)
            await asyncio.gather(*(drain(socket, time.monotonic() + 3) for socket in sockets))
            spent = cpu_seconds(pid) - cpu
            stop.set()
            await watcher
            await asyncio.gather(*(socket.close() for socket in sockets))
            return spent, time.monotonic() - began, latencies

        fresh_cpu, _, fresh_lat = await resume([ws(port, "storm", f"hypergen_socket={uuid.uuid4().hex}") for _ in ids])
        urls = [ws(port, "storm", f"hypergen_socket={i}&hypergen_position={p}") for i, p in zip(ids, positions)]
        storm_cpu, _, storm_lat = await resume(urls)
    median = lambda values: round(1000 * statistics.median(values), 1) if values else None  # noqa: E731
    return {
        "pages": config.pages,
        "runs_behind": TICKS,
        "cpu_ms_per_fresh_handshake": round(1000 * fresh_cpu / config.pages, 1),
        "cpu_ms_per_resuming_handshake": round(1000 * storm_cpu / config.pages, 1),
        "bystander_p50_ms_quiet": median(quiet),
        "bystander_p50_ms_fresh_burst": median(fresh_lat),
        "bystander_p50_ms_storm": median(storm_lat),
    }


# --- presence rooms -------------------------------------------------------------------


async def presence_scenario(config: argparse.Namespace) -> dict:
    with redis_server() as url, server("daphne", "redis", url, env={"BENCH_DEFAULTS": "1"}) as (port, _):
        sockets = await open_all([ws(port, "lobby", f"room={n}") for n in range(config.rooms)])
        await asyncio.sleep(3)
        commands, began = await redis_commands(url), time.monotonic()
        await asyncio.sleep(config.seconds)
        per_second = (await redis_commands(url) - commands) / (time.monotonic() - began)
        await asyncio.gather(*(socket.close() for socket in sockets))
    return {"rooms": config.rooms, "redis_commands_per_s": round(per_second, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--only", nargs="*", default=["idle", "frame", "storage", "storm", "presence"])
    config = parser.parse_args()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": sys.version.split()[0]}
    scenarios = {
        "idle": lambda: asyncio.run(idle_scenario(config)),
        "frame": lambda: frame_scenario(config),
        "storage": lambda: asyncio.run(storage_scenario(config)),
        "storm": lambda: asyncio.run(storm_scenario(config)),
        "presence": lambda: asyncio.run(presence_scenario(config)),
    }
    for name in config.only:
        results[name] = scenarios[name]()
        print(name, json.dumps(results[name]), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
