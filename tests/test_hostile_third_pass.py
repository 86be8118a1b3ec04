"""The third security review's attacks, against a real daphne (and a real Redis where it stores).

Each test is one of its points: many ranges in one frame, non-finite numbers in and out, no
session key in Redis, a silent socket's authority, every key under the layer's prefix, log
volume a client can cause, outputs near the size limit, nothing sent after a close, and a
custom group rule reaching another consumer's extra group. Timing is not asserted (bench/
measures it); timeouts below are generous bounds for "answered at all".
"""

import asyncio
import json
import sqlite3
import uuid

import pytest
from django.test import override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hypergen_consumers import auser_command
from hypergen_consumers.conf import DAPHNE_MAX_MESSAGE_BYTES
from hypergen_consumers.wire.frame_decoding import MAX_RANGE_LENGTH
from tests.servers import daphne, read_log, redis_server, run_script

pytestmark = pytest.mark.server

APP = "tests.hostile_asgi:application"
POSITION = "hypergen.websocket.position"
ACK = "hypergen.websocket.ack"

MAKE_USERS = (
    "import django, json; django.setup()\n"
    "from django.core.management import call_command\n"
    "call_command('migrate', verbosity=0, interactive=False)\n"
    "from django.contrib.auth import login\n"
    "from django.contrib.auth.models import Permission, User\n"
    "from django.contrib.sessions.backends.db import SessionStore\n"
    "from django.test import RequestFactory\n"
    "view_user = Permission.objects.get(codename='view_user')\n"
    "keys = {}\n"
    "for name in ('boss', 'demoted', 'deactivated'):\n"
    "    user = User.objects.create_user(name, password='pw')\n"
    "    user.user_permissions.add(view_user)\n"
    "    request = RequestFactory().get('/'); request.session = SessionStore(); request.user = user\n"
    "    login(request, user, backend='django.contrib.auth.backends.ModelBackend'); request.session.save()\n"
    "    keys[name] = request.session.session_key\n"
    "print(json.dumps(keys))\n"
)


def make_users(env):
    made = run_script(MAKE_USERS, env)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])


def demote_and_deactivate(db_path):
    """Take ``demoted``'s perm away and make ``deactivated`` inactive, straight in the database."""
    with sqlite3.connect(db_path) as db:
        db.execute(
            "DELETE FROM auth_user_user_permissions WHERE user_id = (SELECT id FROM auth_user WHERE username = 'demoted')"
        )
        db.execute("UPDATE auth_user SET is_active = 0 WHERE username = 'deactivated'")


def url(port, path, socket_id=None):
    query = f"?hypergen_socket={socket_id}" if socket_id else ""
    return f"ws://127.0.0.1:{port}/ws/hostile/{path}{query}"


async def open_socket(port, path, *, session=None, socket_id=None):
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    return await connect(
        url(port, path, socket_id), origin=f"http://127.0.0.1:{port}", additional_headers=headers, max_size=None
    )


def browser_json(text):
    """Parse like a browser's JSON.parse, which has no NaN or Infinity."""

    def refuse(name):
        raise ValueError(f"JSON.parse would fail on {name}")

    return json.loads(text, parse_constant=refuse)


async def receive(socket, timeout=15):
    """The next frame, parsed as a browser would, without its positions (client.js bookkeeping)."""
    while True:
        commands = browser_json(await asyncio.wait_for(socket.recv(), timeout=timeout))
        commands = [command for command in commands if command[0] != POSITION]
        if commands:
            return commands


async def receive_some(socket, count):
    """The next ``count`` frames in any order (a broadcast through Redis may come after the ack)."""
    return sorted([json.dumps(await receive(socket)) for _ in range(count)])


def frames(*expected):
    return sorted(json.dumps(frame) for frame in expected)


def call(*args, frame_id=None):
    return json.dumps({"args": list(args), "meta": {} if frame_id is None else {"id": frame_id}})


async def close_code(socket, timeout=20):
    """Read until the server closes the socket; its close code (fails if it stays open)."""

    async def read_to_end():
        try:
            while True:
                await socket.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    return await asyncio.wait_for(read_to_end(), timeout=timeout)


@pytest.fixture(scope="module")
def server():
    with daphne(APP) as (port, process):
        yield port, process


# --- 1. many ranges ------------------------------------------------------------------------


async def test_the_ranges_of_one_frame_share_one_budget_and_other_connections_are_answered(server):
    port, process = server
    attacker, bystander = await open_socket(port, "floats/"), await open_socket(port, "floats/")
    try:
        one_range = {"_": ["range", [0, MAX_RANGE_LENGTH]]}
        await attacker.send(call("matrix", [one_range]))  # The control: one range of the whole budget.
        assert await receive(attacker) == [["matrix", MAX_RANGE_LENGTH]]
        assert await receive(bystander) == [["matrix", MAX_RANGE_LENGTH]]
        many = call("matrix", [one_range] * 300)  # 10 KB: 3 million items, were each range capped alone.
        assert len(many) < 11_000
        await attacker.send(many)
        await bystander.send(call("echo", 1.5))
        assert await receive(bystander) == [["echo", 1.5]]
        refused = (await receive(attacker))[0][1]
        assert refused["code"] == "invalid_frame"
        assert f"more than {MAX_RANGE_LENGTH} items together" in refused["message"]
        assert await receive(attacker) == [["echo", 1.5]]  # The bystander's broadcast; the attacker stays.
    finally:
        await attacker.close()
        await bystander.close()
    assert process.poll() is None


# --- 2. non-finite numbers -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["nan", "inf", "-infinity", "Infinity", "1e999", "-1e400"])
async def test_non_finite_strings_are_refused_for_the_sender_and_never_broadcast(server, text):
    port, _ = server
    sender, member = await open_socket(port, "floats/"), await open_socket(port, "floats/")
    try:
        await sender.send(call("echo", text))
        error = (await receive(sender))[0][1]
        assert error["code"] == "validation_error"
        assert [(entry["type"], entry["loc"]) for entry in error["errors"]] == [("finite_number", ["value"])]
        await sender.send(call("point", {"x": text}))  # A model of the user's own, which allows NaN.
        error = (await receive(sender))[0][1]
        assert error["code"] == "validation_error"
        assert [(entry["type"], entry["loc"]) for entry in error["errors"]] == [("finite_number", ["point", "x"])]
        await sender.send(call("echo", 2.5))
        assert await receive(member) == [["echo", 2.5]]  # The member's next frame: nothing non-finite came.
    finally:
        await sender.close()
        await member.close()


async def test_a_handlers_own_infinity_is_never_sent(server):
    port, _ = server
    sender, member = await open_socket(port, "floats/"), await open_socket(port, "floats/")
    try:
        await sender.send(call("divide", 1, 0))
        assert (await receive(sender))[0][1]["code"] == "handler_error"
        await sender.send(call("divide", 1, 4))
        assert await receive(member) == [["quotient", 0.25]]
        assert await receive(sender) == [["quotient", 0.25]]
    finally:
        await sender.close()
        await member.close()


async def test_user_command_and_consumer_command_refuse_nan_and_outputs_over_the_limit_in_the_caller():
    from hypergen_consumers import aconsumer_command

    with pytest.raises(ValueError, match="NaN and Infinity are not JSON"):
        await auser_command(1, [["score", float("nan")]])
    with pytest.raises(ValueError, match="NaN and Infinity are not JSON"):
        await aconsumer_command("lobby", [["score", float("inf")]])
    with override_settings(HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=1000):
        with pytest.raises(ValueError, match=r"user_command\(\): the commands are 1013 bytes, more than the 872"):
            await auser_command(1, [["blob", "x" * 1000]])


# --- 3. no session key in Redis, 5. every key under the layer's prefix ----------------------


async def redis_contents(client):
    """Every key in Redis and everything in it, as one text."""
    parts = []
    async for key in client.scan_iter(count=1000):
        kind = (await client.type(key)).decode()
        if kind == "string":
            value = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "stream":
            value = await client.xrange(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = await client.smembers(key)
        else:
            value = await client.lrange(key, 0, -1)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


async def test_no_session_key_reaches_redis_in_a_key_or_a_value(tmp_path):
    from redis import asyncio as aioredis

    with redis_server() as redis_port:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}", "TEST_DB_PATH": str(tmp_path / "db.sqlite3")}
        session = make_users(env)["boss"]
        socket_id = uuid.uuid4().hex
        with daphne(APP, env=env) as (port, _):
            page = await open_socket(port, "vault/", session=session, socket_id=socket_id)
            other = await open_socket(port, "vault/", session=session, socket_id=uuid.uuid4().hex)
            try:
                await page.send(call("peek", 1, frame_id=1))
                assert await receive_some(page, 2) == frames([["peek", 1]], [[ACK, 1]])
                await page.send(call("nudge", frame_id=2))  # broadcast="others": the sender is excluded by key.
                assert await receive(page) == [[ACK, 2]]
                assert await receive(other) == [["peek", 1]]
                assert await receive(other) == [["nudge"]]
                await page.send(call("whisper", frame_id=3))  # A recorded sender-only reply.
                assert await receive(page) == [["whisper"], [ACK, 3]]
                client = aioredis.Redis.from_url(env["TEST_REDIS_URL"])
                stored = await redis_contents(client)
                await client.aclose()
            finally:
                await page.close()
                await other.close()
        assert ":hc:replies:" in stored and ":hc:replay:" in stored  # What is checked is there.
        assert session not in stored
        assert socket_id not in stored


def stored_text(fields):
    """A stream entry's frame text: kept as it is (``t``), or inside the message's JSON (``m``)."""
    return fields[b"t"].decode() if b"t" in fields else json.loads(fields[b"m"])["text"]


async def test_two_sites_on_one_redis_differing_by_prefix_share_no_window_and_no_frame_id(tmp_path):
    from redis import asyncio as aioredis

    with redis_server() as redis_port:
        redis_url = f"redis://127.0.0.1:{redis_port}"
        site_a = {"TEST_REDIS_URL": redis_url, "TEST_REDIS_PREFIX": "site-a"}
        site_b = {"TEST_REDIS_URL": redis_url, "TEST_REDIS_PREFIX": "site-b"}
        socket_id = uuid.uuid4().hex  # The same page id on both sites: a claim on one must not hold on the other.
        with daphne(APP, env=site_a) as (port_a, _), daphne(APP, env=site_b) as (port_b, _):
            page_a = await open_socket(port_a, "floats/", socket_id=socket_id)
            page_b = await open_socket(port_b, "floats/", socket_id=socket_id)
            try:
                await page_a.send(call("echo", 1.0, frame_id=1))
                assert await receive_some(page_a, 2) == frames([["echo", 1.0]], [[ACK, 1]])
                await page_b.send(call("echo", 2.0, frame_id=1))  # Run, not answered as a copy of A's frame.
                assert await receive_some(page_b, 2) == frames([["echo", 2.0]], [[ACK, 1]])
                client = aioredis.Redis.from_url(redis_url)
                keys = [key.decode() async for key in client.scan_iter(count=1000)]
                streams = [key for key in keys if (await client.type(key)) == b"stream"]
                stored = {key: [stored_text(fields) for _, fields in await client.xrange(key)] for key in streams}
                await client.aclose()
            finally:
                await page_a.close()
                await page_b.close()
    assert keys and all(key.startswith(("site-a:", "site-b:")) for key in keys), keys
    assert sorted(stored.values()) == [['[["echo",1.0]]'], ['[["echo",2.0]]']]
    assert all(key.startswith("site-a:hc:replay:") == ("1.0" in stored[key][0]) for key in stored)


# --- 4. a silent socket's authority, 8. nothing sent after the close -------------------------


async def test_a_socket_that_never_sends_is_closed_when_its_perm_or_its_user_goes(tmp_path):
    db_path = tmp_path / "db.sqlite3"
    env = {"TEST_DB_PATH": str(db_path)}  # HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS: the default, 5.
    sessions = make_users(env)
    with daphne(APP, env=env) as (port, _):
        boss = await open_socket(port, "vault/", session=sessions["boss"])
        demoted = await open_socket(port, "vault/", session=sessions["demoted"])
        deactivated = await open_socket(port, "vault/", session=sessions["deactivated"])
        try:
            await boss.send(call("peek", 1))
            for socket in (boss, demoted, deactivated):
                assert await receive(socket) == [["peek", 1]]
            demote_and_deactivate(db_path)

            async def keep_broadcasting():
                while True:
                    await boss.send(call("peek", 2))
                    await asyncio.sleep(0.25)

            broadcaster = asyncio.ensure_future(keep_broadcasting())
            try:
                codes = await asyncio.gather(close_code(demoted), close_code(deactivated))
            finally:
                broadcaster.cancel()
            assert codes == [4403, 4401]
            await boss.send(call("peek", 3))  # The one who kept the perm stays.
            while (frame := await receive(boss)) != [["peek", 3]]:
                assert frame == [["peek", 2]]
        finally:
            for socket in (boss, demoted, deactivated):
                await socket.close()


async def test_a_frame_that_finds_its_authority_gone_is_closed_on_and_nothing_is_sent_or_logged_after(tmp_path):
    db_path = tmp_path / "db.sqlite3"
    env = {"TEST_DB_PATH": str(db_path), "TEST_AUTH_RECHECK": "0"}  # 0: re-read before every message.
    sessions = make_users(env)
    with daphne(APP, env=env) as (port, process):
        socket = await open_socket(port, "vault/", session=sessions["demoted"], socket_id=uuid.uuid4().hex)
        try:
            await socket.send(call("whisper", frame_id=1))
            assert await receive(socket) == [["whisper"], [ACK, 1]]
            demote_and_deactivate(db_path)
            await socket.send(call("whisper", frame_id=2))  # Its run closes the socket, then would send the ack.
            await socket.send(call("whisper", frame_id=3))  # On its way while the socket closes.
            assert await close_code(socket) == 4403
        finally:
            await socket.close()
        await asyncio.sleep(1.5)  # daphne reports an application's exception within a second (not an assertion).
        log = read_log(process)
    assert "closed protocol" not in log and "Traceback" not in log and "ERROR" not in log, log[-3000:]


# --- 6. log volume a client can cause -----------------------------------------------------------


async def test_handler_tracebacks_and_refused_handshakes_are_logged_within_the_budget(tmp_path):
    with daphne(APP, log_path=tmp_path / "daphne.log") as (port, process):
        socket = await open_socket(port, "floats/")
        try:
            for _ in range(300):  # A 30-byte frame whose handler raises.
                await socket.send(call("boom"))
            for _ in range(300):
                assert (await receive(socket))[0][1]["code"] == "handler_error"
        finally:
            await socket.close()
        for _ in range(60):  # A custom rule that returns a reserved name a client chose.
            refused = await open_socket(port, "teams/hc-user-1/")
            assert await close_code(refused) == 4403
        flood = read_log(process)
        await asyncio.sleep(1.0)  # The budget refills (2 lines a second); not an assertion.
        socket = await open_socket(port, "floats/")
        await socket.send(call("boom"))
        assert (await receive(socket))[0][1]["code"] == "handler_error"
        await socket.close()
        await asyncio.sleep(0.5)  # Let daphne's log reach the file (not an assertion).
        log = read_log(process)
    # The budget is 20 lines per 10 s (each line shows twice here: our handler and daphne's root).
    tracebacks, refusals = flood.count("Traceback") // 2, flood.count("handshake refused") // 2
    assert 1 <= tracebacks <= 25 and refusals <= 25, (tracebacks, refusals)  # 300 and 60 before.
    assert "client errors were not logged: over the budget" in log


# --- 7. outputs near the size limit -------------------------------------------------------------


async def test_an_output_that_fits_only_without_its_position_is_refused_for_the_sender_and_reaches_nobody(server):
    port, _ = server
    sender = await open_socket(port, "floats/")
    plain = await open_socket(port, "floats/")
    page = await open_socket(port, "floats/", socket_id=uuid.uuid4().hex)  # client.js: gets positions.
    try:
        size = DAPHNE_MAX_MESSAGE_BYTES - 20 - len('[["blob",""]]')  # 20 bytes under daphne's limit.
        await sender.send(call("blob", size))
        error = (await receive(sender))[0][1]
        assert error["code"] == "frame_too_large"
        assert "kept for the frame's position" in error["message"]
        await sender.send(call("blob", 5))
        assert await receive(plain) == [["blob", "xxxxx"]]  # The next frame: the big one reached nobody.
        raw = json.loads(await asyncio.wait_for(page.recv(), 15))
        while raw[0][0] == POSITION:
            raw = json.loads(await asyncio.wait_for(page.recv(), 15))
        assert raw[0] == ["blob", "xxxxx"] and raw[1][0] == POSITION
    finally:
        for socket in (sender, plain, page):
            await socket.close()


# --- 9. another consumer's extra group ----------------------------------------------------------


async def test_a_custom_rule_cannot_lead_a_client_into_another_consumers_extra_group(server):
    port, _ = server
    member = await open_socket(port, "announcer/")
    try:
        intruder = await open_socket(port, "teams/announcements/")
        assert await close_code(intruder) == 4403
        team = await open_socket(port, "teams/blue/")  # A name of the rule's own is fine.
        await team.send(call("post", "hello"))
        assert await receive(team) == [["post", "hello"]]
        await team.close()
        await member.send(call("announce", "news"))
        assert await receive(member) == [["announce", "news"]]  # Its next frame: no intruder's post came.
    finally:
        await member.close()
