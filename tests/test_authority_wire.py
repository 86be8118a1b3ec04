"""Logout in one process closes the session's sockets in every process (real daphne x2, real Redis)."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import daphne, redis_server, run_script

pytestmark = pytest.mark.server

SET_UP = (
    "import django; django.setup()\n"
    "from django.core.management import call_command\n"
    "call_command('migrate', verbosity=0, interactive=False)\n"
    "from django.contrib.auth import login\n"
    "from django.contrib.auth.models import User\n"
    "from django.contrib.sessions.backends.db import SessionStore\n"
    "from django.test import RequestFactory\n"
    "user = User.objects.create_superuser('boss', password='pw')\n"
    "request = RequestFactory().get('/'); request.session = SessionStore(); request.user = user\n"
    "login(request, user, backend='django.contrib.auth.backends.ModelBackend'); request.session.save()\n"
    "print(request.session.session_key)\n"
)
LOG_OUT = (
    "import django, sys; django.setup()\n"
    "from django.contrib.auth import logout\n"
    "from django.contrib.auth.models import User\n"
    "from django.contrib.sessions.backends.db import SessionStore\n"
    "from django.test import RequestFactory\n"
    "request = RequestFactory().get('/'); request.session = SessionStore(sys.argv[1])\n"
    "request.user = User.objects.get(username='boss')\n"
    "logout(request)\n"
)


async def test_logout_in_another_process_closes_the_sessions_sockets_in_every_process(tmp_path):
    with redis_server() as redis_port:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}", "TEST_DB_PATH": str(tmp_path / "db.sqlite3")}
        made = run_script(SET_UP, env)
        assert made.returncode == 0, made.stderr
        session_key = made.stdout.strip().splitlines()[-1]
        with (
            daphne("tests.asgi:application", env=env) as (port_a, _),
            daphne("tests.asgi:application", env=env) as (port_b, _),
        ):
            sockets = [
                await connect(
                    f"ws://127.0.0.1:{port}/ws/tests/secret/",
                    origin=f"http://127.0.0.1:{port}",
                    additional_headers={"Cookie": f"sessionid={session_key}"},
                )
                for port in (port_a, port_b)
            ]
            try:
                # Both are in; a broadcast from one process reaches the other.
                await sockets[0].send(json.dumps({"args": ["peek"], "meta": {}}))
                for socket in sockets:
                    assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == [["secret"]]
                logged_out = run_script(LOG_OUT.replace("sys.argv[1]", repr(session_key)), env)
                assert logged_out.returncode == 0, logged_out.stderr
                for socket in sockets:
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(socket.recv(), 5)
                    assert closed.value.rcvd.code == 4401
            finally:
                for socket in sockets:
                    await socket.close()
