"""Measure what hostile clients cost a real daphne: the numbers in docs/deployment.rst (Security).

    .venv/bin/python bench/hostile.py

Serves the test suite's consumers (tests/consumers.py) with daphne and prints, for each
attack, what another connection sees (its round trip) and what the server pays (peak RSS,
log bytes). Run it before and after a change to the frame pipeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import free_port, stop, wait_for_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RANGE_FRAME = '{"args":["total",{"_":["range",[0,30000000]]}],"meta":{}}'


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def round_trip(url: str, origin: str) -> float:
    async with connect(url, origin=origin) as victim:
        started = time.monotonic()
        await victim.send(json.dumps({"args": ["echo", 1], "meta": {}}))
        await asyncio.wait_for(victim.recv(), timeout=120)
        return time.monotonic() - started


async def crafted_range(port: int, pid: int) -> None:
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/tests/numbers/"
    idle = await round_trip(url, origin)
    rss_before = peak_rss_mb(pid)
    async with connect(url, origin=origin) as attacker, connect(url, origin=origin) as victim:
        await attacker.send(RANGE_FRAME)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await victim.send(json.dumps({"args": ["echo", 1], "meta": {}}))
        await asyncio.wait_for(victim.recv(), timeout=120)
        stalled = time.monotonic() - started
        reply = await asyncio.wait_for(attacker.recv(), timeout=120)
    print(
        f"range frame ({len(RANGE_FRAME)} bytes): other client's round trip {idle * 1000:.1f} ms idle, "
        f"{stalled * 1000:.1f} ms during the attack; peak RSS {rss_before:.0f} -> {peak_rss_mb(pid):.0f} MB; "
        f"attacker got {reply[:80]}"
    )


async def bad_frames(port: int, log_path: Path) -> None:
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/tests/numbers/"
    name = "x" * 250_000
    before = log_path.stat().st_size
    async with connect(url, origin=origin, max_size=None) as attacker:
        for n in range(200):
            await attacker.send(json.dumps({"args": [name, n], "meta": {}}) if n % 2 else "not json")
            await asyncio.wait_for(attacker.recv(), timeout=30)
    await asyncio.sleep(0.5)
    print(f"200 bad frames (100 with a 250 KB handler name): {log_path.stat().st_size - before} log bytes")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def slow_reader(port: int, pid: int) -> None:
    """100 MB of broadcasts while one member's socket never reads."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(
        f"GET /ws/tests/big/bench/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://127.0.0.1:{port}\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    before = current_rss_mb(pid)
    url = f"ws://127.0.0.1:{port}/ws/tests/big/bench/"
    async with connect(url, origin=f"http://127.0.0.1:{port}", max_size=None) as member:
        for _ in range(1000):
            await member.send(json.dumps({"args": ["blob", 100_000], "meta": {}}))
            await asyncio.wait_for(member.recv(), timeout=60)
        after = current_rss_mb(pid)
    raw.close()
    print(f"100 MB broadcast with one member never reading: server RSS {before:.0f} -> {after:.0f} MB")


async def main() -> None:
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-hostile-{port}.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tests.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
        await crafted_range(port, process.pid)
        await bad_frames(port, log_path)
        await slow_reader(port, process.pid)
    finally:
        stop(process)


if __name__ == "__main__":
    asyncio.run(main())
