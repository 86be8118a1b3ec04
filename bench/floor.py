"""The floor: the ``websockets`` library's own asyncio server, with no framework above it.

    python bench/floor.py PORT

``/ws/roundtrip/floor/`` decodes each frame and sends back the rendered template's bytes
(the same as every renderer in bench/benchsite sends; the template is rendered here by
string formatting, which is what a server without hypergen would do). ``/ws/fanout/floor/``
sends them to every connection with ``websockets.broadcast()``, which writes one encoded
frame to every socket without a task per receiver: the fastest fan-out Python offers here.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

MEMBERS: set[ServerConnection] = set()


def rendered(text: str) -> str:
    n = json.loads(text)["args"][0]
    return json.dumps([["hypergen.morph", "t", f"<span>n = {n}</span>"]], separators=(",", ":"))


async def serve_connection(socket: ServerConnection) -> None:
    if socket.request.path.startswith("/ws/fanout/"):
        MEMBERS.add(socket)
        try:
            async for text in socket:
                broadcast(MEMBERS, rendered(text))
        finally:
            MEMBERS.discard(socket)
    else:
        async for text in socket:
            await socket.send(rendered(text))


async def main(port: int) -> None:
    async with serve(serve_connection, "127.0.0.1", port, max_queue=None, ping_interval=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
