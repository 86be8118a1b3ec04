"""CPU instructions per message of a round trip through the bench site, in process, under callgrind.

    python bench/instructions.py [--endpoints ours_command raw_echo_nohop] [--connections 50]
                                 [--messages 2000 6000] [--tree CHECKOUT]

Seconds are a poor measure on this machine: it is shared, and a round trip's rate moves by a
third between two runs of the same code. Instructions are exact and repeat: this counts them
with ``valgrind --tool=callgrind``, the ASGI application of ``bench/benchsite/asgi.py`` (its
middleware, the in-memory channel layer) called directly with asyncio queues in place of a
server. For each endpoint, a driver process (this file with ``--drive``) opens the
connections, sends bench/load.py's frames (built by its own ``frame()``) with one in flight
per connection, as the wire bench does, awaits each reply and disconnects. It runs under
callgrind twice, with the two ``--messages`` counts and the same environment
(``PYTHONHASHSEED=0``), and the difference of the two totals divided by the difference of
the counts is the cost of one message: start-up, imports, handshakes and closes cancel out.
The driver's own work per message (a frame built, two queue hops) is counted too, for every
endpoint alike. ``--tree`` counts another checkout's ``hypergen_consumers`` (first on
``PYTHONPATH``; this tree's ``bench/benchsite`` serves both), as bench/roundtrip_pairs.py's
``--before`` does. About a minute and a half per endpoint; writes
``bench/results/instructions.json``.

The driver alone, without valgrind (it prints one JSON line):

    python bench/instructions.py --drive ours_command --connections 50 --messages 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ENDPOINTS = ["ours_command", "raw_echo_nohop"]
TOTALS = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


# --- the driver: runs in the counted process -----------------------------------------------


class Connection:
    """One websocket connection to the ASGI application: its two queues and its task."""

    def __init__(self, application: Any, path: str, index: int, kind: str) -> None:
        # client.js names each socket (bench/load.py's with_socket_id); a fixed name, so counts repeat.
        query = f"hypergen_socket=bench{index:06d}" if kind == "delivery" else ""
        self.scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")],
            "client": ["127.0.0.1", 40000 + index],
            "server": ["127.0.0.1", 8000],
            "subprotocols": [],
        }
        self.incoming: asyncio.Queue[dict] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict] = asyncio.Queue()
        self.task = asyncio.create_task(application(self.scope, self.incoming.get, self.outgoing.put))
        self.task.add_done_callback(self.ended)

    def ended(self, task: asyncio.Task) -> None:
        """Wake a waiting ``output()`` when the application ends (a put costs nothing per message)."""
        self.outgoing.put_nowait({"type": "ended"})

    async def output(self) -> dict:
        """The application's next message; its exception if it ended instead."""
        message = await self.outgoing.get()
        if message["type"] == "ended":
            self.task.result()  # Raises what ended the application.
            msg = f"{self.scope['path']}: the application ended without sending a message"
            raise RuntimeError(msg)
        return message

    async def connect(self) -> None:
        await self.incoming.put({"type": "websocket.connect"})
        message = await self.output()
        if message["type"] != "websocket.accept":
            msg = f"{self.scope['path']}: expected websocket.accept, got {message!r}"
            raise RuntimeError(msg)

    async def reply(self, text: str, kind: str) -> str:
        """Send one text frame and return the reply (with ``delivery``, up to its acknowledgement)."""
        await self.incoming.put({"type": "websocket.receive", "text": text})
        while True:
            message = await self.output()
            if message["type"] != "websocket.send":
                msg = f"{self.scope['path']}: expected websocket.send, got {message!r}"
                raise RuntimeError(msg)
            if kind != "delivery" or '"hypergen.websocket.ack"' in message["text"]:
                return message["text"]

    async def close(self) -> None:
        self.task.remove_done_callback(self.ended)
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await self.task


async def drive(endpoint: str, connections: int, messages: int) -> dict:
    """Open ``connections``, warm each up once, then answer ``messages`` frames, one in flight per connection."""
    import load  # The wire bench's client: its frames, built the same way.
    from run import protocol

    from benchsite.asgi import application  # After DJANGO_SETTINGS_MODULE is set.

    kind = load.PROTOCOL = protocol(endpoint)
    path = f"/ws/roundtrip/{endpoint}/"
    sockets = [Connection(application, path, index, kind) for index in range(connections)]
    for socket in sockets:
        await socket.connect()
    for socket in sockets:  # Warm up every connection once, as bench/load.py does.
        await socket.reply(load.frame(0), kind)
    replies: list[str] = []

    async def loop(socket: Connection, index: int, count: int) -> None:
        for step in range(count):
            replies.append(await socket.reply(load.frame(index * 1_000_000 + step), kind))

    share, extra = divmod(messages, connections)
    await asyncio.gather(*(loop(socket, i, share + (i < extra)) for i, socket in enumerate(sockets)))
    for socket in sockets:
        await socket.close()
    import hypergen_consumers

    return {
        "endpoint": endpoint,
        "connections": connections,
        "messages": len(replies),
        "last_reply": replies[-1] if replies else None,
        "hypergen_consumers": str(Path(hypergen_consumers.__file__).parent),
    }


def drive_main(endpoint: str, connections: int, messages: int) -> None:
    sys.path.insert(0, str(BENCH))  # benchsite, as bench/run.py puts bench/ on the path.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    print(json.dumps(asyncio.run(drive(endpoint, connections, messages))), flush=True)


# --- the counter: runs the driver under callgrind ------------------------------------------


def environment(tree: Path) -> dict[str, str]:
    """The same environment for every run, so counts repeat: a fixed hash seed, one tree first."""
    return {
        **os.environ,
        "PYTHONPATH": ":".join([str(tree), str(BENCH)]),
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        "PYTHONHASHSEED": "0",
    }


def driver(endpoint: str, connections: int, messages: int) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--drive",
        endpoint,
        "--connections",
        str(connections),
        "--messages",
        str(messages),
    ]


def checked(result: subprocess.CompletedProcess[str], messages: int) -> dict:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, result.args))} failed: {result.stderr[-2000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    if outcome["messages"] != messages:
        raise RuntimeError(f"expected {messages} replies, the driver got {outcome['messages']}")
    return outcome


def count(endpoint: str, connections: int, messages: int, env: dict[str, str]) -> int:
    """Total instructions (Ir) of one driver run under callgrind."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--quiet"]
        command += driver(endpoint, connections, messages)
        checked(subprocess.run(command, capture_output=True, text=True, env=env, cwd=BENCH), messages)
        match = TOTALS.search(out.read_text())
    if match is None:
        raise RuntimeError(f"no summary: or totals: line in {out}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", nargs="+", default=ENDPOINTS)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--messages", nargs="+", type=int, default=[2000, 6000], help="N1 N2 (one with --drive)")
    parser.add_argument("--tree", help="another checkout whose hypergen_consumers is counted")
    parser.add_argument("--drive", metavar="ENDPOINT", help="run the driver alone (what callgrind counts)")
    config = parser.parse_args()
    if config.drive:
        return drive_main(config.drive, config.connections, config.messages[-1])
    if len(config.messages) != 2 or config.messages[0] >= config.messages[1]:
        parser.error(f"--messages takes two counts, the smaller first (e.g. 2000 6000), not {config.messages}")
    tree = Path(config.tree).resolve() if config.tree else ROOT
    env = environment(tree)
    small, large = config.messages
    rows = {}
    for endpoint in config.endpoints:
        # Once without valgrind: replies arrive, the right tree is imported, and bytecode is
        # cached before counting (a first run that compiles would count its compiling).
        command = driver(endpoint, config.connections, small)
        outcome = checked(subprocess.run(command, capture_output=True, text=True, env=env, cwd=BENCH), small)
        if not Path(outcome["hypergen_consumers"]).is_relative_to(tree):
            raise RuntimeError(f"the driver imported {outcome['hypergen_consumers']}, not {tree}'s hypergen_consumers")
        totals = {messages: count(endpoint, config.connections, messages, env) for messages in (small, large)}
        per_message = (totals[large] - totals[small]) / (large - small)
        rows[endpoint] = {"instructions_per_message": per_message, "totals": {str(k): v for k, v in totals.items()}}
        print(f"{endpoint:20s} {per_message:>10,.0f} instructions per message ({config.connections} connections)")
    path = BENCH / "results" / "instructions.json"
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "tree": str(tree),
        "commit": commit or None,  # Of the counted tree, when it is a git checkout.
        "python": sys.version.split()[0],
        "valgrind": valgrind,
        "connections": config.connections,
        "messages": [small, large],
        "rows": rows,
    }
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
