"""Run real server processes on loopback for the wire tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {read_log(process)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s: {read_log(process)}")


def read_log(process: subprocess.Popen) -> str:
    log = getattr(process, "log_path", None)
    return Path(log).read_text() if log and Path(log).exists() else ""


@contextmanager
def daphne(
    application: str,
    *,
    settings: str = "tests.settings",
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[tuple[int, subprocess.Popen]]:
    """Start ``daphne application`` on a free loopback port; stop it on exit."""
    port = port or free_port()
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"daphne-{port}.log"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.log_path = log_path  # type: ignore[attr-defined]
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server still draining a backlog must not hang the caller."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def redis_server(port: int | None = None) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port, keeping nothing on disk."""
    port = port or free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)


class RestartableRedis:
    """A redis-server on a fixed loopback port that a test can stop and start again (empty,
    as one without persistence comes back after a crash or a redeploy)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._running = contextlib.ExitStack()

    def start(self) -> None:
        self._running.enter_context(redis_server(self.port))

    def stop(self) -> None:
        self._running.close()


@contextmanager
def restartable_redis() -> Iterator[RestartableRedis]:
    """A running :class:`RestartableRedis`, stopped whatever the test left it as."""
    redis = RestartableRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def run_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run Python code in another process with the test settings, as a Celery task would run."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def example_env(db_path: Path) -> dict[str, str]:
    """Environment that serves example/ with its own SQLite file."""
    return {"PYTHONPATH": f"{ROOT / 'example'}:{ROOT}", "EXAMPLE_DB": str(db_path)}


def migrate_example(env: dict[str, str]) -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "example.settings", **env}
    subprocess.run(
        [sys.executable, "example/manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=120,
    )
