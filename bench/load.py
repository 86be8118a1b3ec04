"""The load-generating client, run as its own process by bench/run.py. Prints one JSON line.

    python bench/load.py roundtrip URL --connections 50 --seconds 3
    python bench/load.py fanout SENDER_URL RECEIVER_URL [RECEIVER_URL ...] --receivers 1000 --messages 20
    python bench/load.py idle URL --connections 1000      # holds them until stdin closes
    python bench/load.py sample URL                        # one reply, to compare bytes on the wire

``--protocol chanx`` sends chanx's frame (``{"action": ..., "payload": {"n": n}}``) instead
of hypergen's callback frame (``{"args": [n], "meta": {}}``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
import time
import uuid

from websockets.asyncio.client import connect

NUMBER = re.compile(r'n(?: = |": ?)(\d+)')  # "<span>n = 5</span>" or chanx's {"n": 5}
PROTOCOL = "hypergen"


FRAME_IDS = itertools.count(1)


def frame(n: int, action: str = "echo") -> str:
    if PROTOCOL == "delivery":  # What client.js sends: the handler's name first, and a frame id.
        return json.dumps({"args": ["render", n], "meta": {"id": next(FRAME_IDS)}})
    if PROTOCOL == "chanx":
        return json.dumps({"action": action, "payload": {"n": n}})
    if PROTOCOL == "named":
        return json.dumps({"args": ["render", n], "meta": {}})
    return json.dumps({"args": [n], "meta": {}})


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def open_many(urls: list[str], count: int) -> list:
    sockets = []
    for start in range(0, count, 100):
        batch = [
            connect(with_socket_id(urls[i % len(urls)]), max_queue=None, open_timeout=60, ping_interval=None)
            for i in range(start, min(start + 100, count))
        ]
        sockets += await asyncio.gather(*batch)
    return sockets


def with_socket_id(url: str) -> str:
    """client.js names each socket (the delivery protocol: replay positions, frame acks)."""
    return f"{url}?hypergen_socket={uuid.uuid4().hex}" if PROTOCOL == "delivery" else url


async def answer(socket) -> None:
    """One reply; with the delivery protocol, up to its acknowledgement (the reply's last command)."""
    text = await socket.recv()
    while PROTOCOL == "delivery" and '"hypergen.websocket.ack"' not in text:
        text = await socket.recv()


async def roundtrip(url: str, connections: int, seconds: float) -> dict:
    sockets = await open_many([url], connections)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(socket, index):
        n = index * 1_000_000
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await socket.send(frame(n))
            await answer(socket)
            latencies.append(time.perf_counter() - began)
            n += 1

    for socket in sockets:  # Warm up every connection once.
        await socket.send(frame(0))
        await answer(socket)
    began = time.perf_counter()
    await asyncio.gather(*(loop(socket, i) for i, socket in enumerate(sockets)))
    elapsed = time.perf_counter() - began
    for socket in sockets:
        await socket.close()
    return {
        "messages": len(latencies),
        "seconds": elapsed,
        "messages_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def fanout(sender_url: str, receiver_urls: list[str], receivers: int, messages: int) -> dict:
    sender = (await open_many([sender_url], 1))[0]
    sockets = await open_many(receiver_urls, receivers)
    arrivals: dict[int, list[float]] = {}
    first: list[str] = []  # The first frame a receiver got, to compare bytes on the wire.
    done: dict[int, asyncio.Event] = {}

    async def read(socket):
        async for text in socket:
            match = NUMBER.search(text)
            if match:
                n = int(match.group(1))
                times = arrivals.setdefault(n, [])
                if not first:
                    first.append(text)
                times.append(time.perf_counter())
                if len(times) == receivers and n in done:
                    done[n].set()

    readers = [asyncio.create_task(read(socket)) for socket in sockets]
    drain = asyncio.create_task(read_nothing(sender))
    await asyncio.sleep(0.5)  # Let every receiver's group_add settle.
    completions = []
    began = time.perf_counter()
    for n in range(1, messages + 1):
        done[n] = asyncio.Event()
        sent = time.perf_counter()
        await sender.send(frame(n, "shout"))
        await asyncio.wait_for(done[n].wait(), timeout=120)
        completions.append(max(arrivals[n]) - sent)
    elapsed = time.perf_counter() - began
    for task in [*readers, drain]:
        task.cancel()
    for socket in [sender, *sockets]:
        await socket.close()
    return {
        "receivers": receivers,
        "messages": messages,
        "seconds": elapsed,
        "first_frame": first[0],
        "deliveries_per_s": receivers * messages / elapsed,
        "p50_ms": percentile(completions, 0.5) * 1000,
        "p99_ms": percentile(completions, 0.99) * 1000,
    }


async def read_nothing(socket):
    async for _ in socket:
        pass


async def connect_burst(url: str, connections: int) -> dict:
    """Open ``connections`` sockets, 100 handshakes at a time, as clients returning after a deploy."""
    began = time.perf_counter()
    sockets = await open_many([url], connections)
    elapsed = time.perf_counter() - began
    began_closing = time.perf_counter()
    await asyncio.gather(*(socket.close() for socket in sockets))
    closing = time.perf_counter() - began_closing
    return {
        "connections": connections,
        "seconds": elapsed,
        "connects_per_s": connections / elapsed,
        "closes_per_s": connections / closing,
    }


async def sample(url: str) -> dict:
    (socket,) = await open_many([url], 1)
    await socket.send(frame(5))
    reply = await socket.recv()
    await socket.close()
    return {"reply": reply}


async def idle(url: str, connections: int) -> dict:
    sockets = await open_many([url], connections)
    print(json.dumps({"ready": len(sockets)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for socket in sockets:
        await socket.close()
    return {"closed": len(sockets)}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    rt = sub.add_parser("roundtrip")
    rt.add_argument("url")
    rt.add_argument("--connections", type=int, default=1)
    rt.add_argument("--seconds", type=float, default=3)
    fo = sub.add_parser("fanout")
    fo.add_argument("sender_url")
    fo.add_argument("receiver_urls", nargs="+")
    fo.add_argument("--receivers", type=int, default=100)
    fo.add_argument("--messages", type=int, default=20)
    cb = sub.add_parser("connect")
    cb.add_argument("url")
    cb.add_argument("--connections", type=int, default=1000)
    sa = sub.add_parser("sample")
    sa.add_argument("url")
    il = sub.add_parser("idle")
    il.add_argument("url")
    il.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--protocol", choices=["hypergen", "named", "delivery", "chanx"], default="hypergen")
    args = parser.parse_args()
    global PROTOCOL
    PROTOCOL = args.protocol
    if args.mode == "roundtrip":
        result = asyncio.run(roundtrip(args.url, args.connections, args.seconds))
    elif args.mode == "fanout":
        result = asyncio.run(fanout(args.sender_url, args.receiver_urls, args.receivers, args.messages))
    elif args.mode == "connect":
        result = asyncio.run(connect_burst(args.url, args.connections))
    elif args.mode == "sample":
        result = asyncio.run(sample(args.url))
    else:
        result = asyncio.run(idle(args.url, args.connections))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
