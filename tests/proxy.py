"""A loopback TCP proxy a test can cut, refuse, black-hole (one direction) or point elsewhere.

It stands between a browser and daphne to play a flaky network: ``cut()`` closes every
open connection (both sides see it); ``refuse(True)`` closes new ones at once (a page that
is away); ``blackhole("up")`` swallows what the browser sends, ``blackhole("down")`` what
the server sends, with the TCP connections still open, as a dead link does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.servers import free_port


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.refusing = False
        self.swallowing: str | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._call(self._close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _call(self, func: Any, *args: Any) -> None:
        done = threading.Event()

        def run() -> None:
            func(*args)
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    # --- controls (called from the test's thread) -------------------------------------

    def cut(self) -> None:
        """Close every open connection through the proxy."""
        self._call(self._close_all)

    def refuse(self, on: bool) -> None:
        """While on, a new connection is closed as soon as it is accepted."""
        self.refusing = on

    def blackhole(self, direction: str | None) -> None:
        """Swallow bytes going ``"up"`` (browser to server) or ``"down"``; None lets all through."""
        self.swallowing = direction

    def retarget(self, port: int) -> None:
        """Send new connections to another server (a page that comes back to another process)."""
        self.target_port = port

    # --- the proxy itself -------------------------------------------------------------

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(
            self._pipe(reader, upstream_writer, "up", writer),
            self._pipe(upstream_reader, writer, "down", upstream_writer),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str, other: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.swallowing == direction:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for side in (writer, other):
                side.close()
                self._writers.discard(side)
