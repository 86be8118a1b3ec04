"""Start and stop the benchmark's server processes on loopback.

bench/ stands on its own (it does not import the tests package), so it keeps these few
helpers itself: a free port, waiting until a server listens, stopping one that will not
stop, and a throwaway redis-server.
"""

from __future__ import annotations

import socket
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["free_port", "wait_for_port", "stop", "redis_server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Return once ``port`` accepts connections; raise if ``process`` exits first or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[:4]} did not listen on {port} within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server still draining a backlog must not hang the run."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of the run's own on a free loopback port, keeping nothing on disk; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(process)
