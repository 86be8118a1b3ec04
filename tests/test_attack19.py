"""Red-team tests for issue 19's changes, against a real daphne (and redis-server where it matters).

Each test states what a hostile or unlucky client or operator does, and what must hold for
OTHER connections. They are expected to FAIL on the code they were written against: each
failure is a finding (see the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from hypergen_consumers.connection.heartbeat import HEARTBEAT_FRAME, HEARTBEAT_REPLY
from tests.servers import daphne

pytestmark = pytest.mark.server


def page_url(port: int, room: str, socket_id: str, position: str | None = None, heartbeat: int | None = None) -> str:
    url = f"ws://127.0.0.1:{port}/ws/attack/replay-room/{room}/?hypergen_socket={socket_id}"
    if position is not None:
        url += f"&hypergen_position={position}"
    if heartbeat is not None:
        url += f"&hypergen_heartbeat={heartbeat}"
    return url


async def until(condition, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def runs_for(directory: Path, room: str) -> list[tuple[str, int]]:
    path = directory / f"runs-{room}"
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines()]


async def kick(port: int, room: str, count: int) -> None:
    origin = f"http://127.0.0.1:{port}"
    async with connect(f"ws://127.0.0.1:{port}/ws/attack/kicker/", origin=origin) as kicker:
        await kicker.send(json.dumps({"args": ["kick", room, count], "meta": {}}))
        while "kicked" not in await asyncio.wait_for(kicker.recv(), 10):
            pass


# --- 1. the two catch-up slots ------------------------------------------------------------


async def two_gone_pages_hold_the_slots(port: int, directory: Path, room: str) -> list[str]:
    """Three slow runs stored; two pages resume from the start (three runs behind), take both
    catch-up slots, and go away (a hostile client, or tabs closed)."""
    origin = f"http://127.0.0.1:{port}"
    (directory / f"gate-{room}").touch()  # Every tick run is slow from now on.
    await kick(port, room, 3)  # Three runs stored; nobody is in the room yet.
    hostile = ["hostile-page-aaaa", "hostile-page-bbbb"]
    for socket_id in hostile:
        socket = await connect(page_url(port, room, socket_id, position=""), origin=origin)
        await until(lambda: any(s == socket_id for s, _ in runs_for(directory, room)), f"{socket_id} replays")
        await socket.close()
    return hostile


async def test_a_page_waiting_for_a_catch_up_slot_still_has_its_heartbeat_answered():
    """A third page resuming while both slots are held must not look dead: client.js gives a
    socket up after one silent heartbeat, reconnects, and queues again at the back."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with daphne("tests.attack19_asgi:application", env={"ATTACK19_DIR": tmp}) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            await two_gone_pages_hold_the_slots(port, directory, "deaf")
            async with connect(
                page_url(port, "deaf", "honest-page-1", position="", heartbeat=1000), origin=origin
            ) as page:
                await page.send(HEARTBEAT_FRAME)
                frames: list[str] = []
                with contextlib.suppress(asyncio.TimeoutError):
                    while HEARTBEAT_REPLY not in frames:
                        frames.append(await asyncio.wait_for(page.recv(), 4))
                (directory / "gate-deaf").unlink()
                assert HEARTBEAT_REPLY in frames, (
                    "a resuming page waiting for a catch-up slot got no heartbeat answer for 4 s"
                )


async def test_the_catch_up_of_a_page_that_went_away_stops_running_handlers():
    """The pages that went away keep their slots and run every replayed handler for nobody
    (and a hostile client can queue any number of such catch-ups: one handshake each, up to
    25 runs each), while honest resuming pages wait behind them."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with daphne("tests.attack19_asgi:application", env={"ATTACK19_DIR": tmp}) as (port, process):
            hostile = await two_gone_pages_hold_the_slots(port, directory, "gone")
            (directory / "gate-gone").unlink()  # The slow service answers again.
            await asyncio.sleep(2)  # Let whatever still runs for the gone pages run (then count).
            gone_runs = [run for run in runs_for(directory, "gone") if run[0] in hostile]
            assert len(gone_runs) <= 2, f"runs for pages that had already closed: {gone_runs}"


# --- 2. presence: a page that leaves while Redis is unreachable --------------------------


def lobby(port: int):
    return connect(f"ws://127.0.0.1:{port}/ws/tests/lobby/ghost/", origin=f"http://127.0.0.1:{port}")


async def who(socket) -> list:
    await socket.send(json.dumps({"args": ["who"], "meta": {}}))
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        if frame and frame[0][0] == "who":
            return frame[0][1]
        if frame and frame[0][0] == "hypergen.websocket.error":
            return frame  # Still down: the caller tries again.


async def test_a_page_that_leaves_while_redis_is_unreachable_does_not_stay_present_for_good():
    """Redis keeps its data but this process cannot reach it for a few seconds (a network
    partition, a failover, or a restart with RDB/AOF persistence, Redis's own default). A page
    that closes meanwhile cannot remove its presence entry; the entry names a LIVE process, so
    no heartbeat ever prunes it, and recovery re-adds only the entries still local. Every other
    page (in every process) lists the gone user for as long as the process lives."""
    from tests.proxy import Proxy
    from tests.servers import redis_server

    with redis_server() as redis_port, Proxy(redis_port) as proxy:
        env = {
            "TEST_REDIS_URL": f"redis://127.0.0.1:{proxy.port}",
            "TEST_PRESENCE_HEARTBEAT": "1",
            "TEST_PRESENCE_EXPIRY": "3",
        }
        with daphne("tests.asgi:application", env=env) as (port, process):
            async with lobby(port) as stays:
                leaver = await lobby(port)
                await until_listed(stays, 2)
                proxy.refuse(True)
                proxy.cut()  # Redis unreachable from daphne; Redis itself keeps everything.
                await leaver.close()
                await asyncio.sleep(8)  # The leave gives up (4 tries); daphne's close timeout is 10 s.
                proxy.refuse(False)
                deadline = time.monotonic() + 15  # Recovery, then more than 3 heartbeats and an expiry.
                listed = None
                while time.monotonic() < deadline:
                    listed = await who(stays)
                    if (
                        isinstance(listed, list)
                        and listed
                        and listed[0] != "hypergen.websocket.error"
                        and len(listed) == 1
                    ):
                        break
                    await asyncio.sleep(0.5)
                assert isinstance(listed, list) and len(listed) == 1, (
                    f"15 s after Redis is reachable again, the page that left is still present: {listed}\n"
                    + read_log_tail(process)
                )


async def until_listed(socket, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listed = await who(socket)
        if isinstance(listed, list) and len(listed) == count and listed[0] != "hypergen.websocket.error":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never listed {count}")


def read_log_tail(process) -> str:
    from tests.servers import read_log

    return read_log(process)[-2000:]


async def test_a_page_that_leaves_while_redis_is_unreachable_leaves_its_groups_once_redis_answers():
    """As above, for the channel layer: its ``group_discard`` failed, so its channel stays in
    the room's group in Redis for channels-redis's group_expiry (a day): every broadcast to the
    room is pushed to the dead channel as well, and recovery does not owe the discard."""
    import redis as redis_sync

    from tests.proxy import Proxy
    from tests.servers import redis_server

    with redis_server() as redis_port, Proxy(redis_port) as proxy:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{proxy.port}"}
        client = redis_sync.Redis(port=redis_port)
        with daphne("tests.asgi:application", env=env) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            url = f"ws://127.0.0.1:{port}/ws/tests/crowd/stale/"
            async with connect(f"ws://127.0.0.1:{port}/ws/tests/crowd/elsewhere/", origin=origin) as stays:
                before = set(client.keys("asgi:group:*"))
                leavers = [await connect(url, origin=origin) for _ in range(3)]
                (room,) = set(client.keys("asgi:group:*")) - before
                assert client.zcard(room) == 1, "the process is the room's one member (local_groups)"
                proxy.refuse(True)
                proxy.cut()
                for leaver in leavers:  # The room's last pages leave: the process owes its discard.
                    await leaver.close()
                await asyncio.sleep(8)
                proxy.refuse(False)
                deadline = time.monotonic() + 20
                said = False
                while time.monotonic() < deadline and not said:
                    await stays.send(json.dumps({"args": ["say", "back"], "meta": {}}))
                    with contextlib.suppress(asyncio.TimeoutError):
                        while not said:
                            said = "said" in await asyncio.wait_for(stays.recv(), 1)
                assert said, "the layer recovered"
                await asyncio.sleep(2)
                assert client.zcard(room) == 0, f"{client.zcard(room)} channels left in a room nobody is in"


# --- 3. a black-holed Redis (accepts, never answers) ---------------------------------------


async def test_a_black_holed_redis_then_healed():
    """Redis accepts but never answers (the proxy swallows what daphne sends), then heals.
    Meanwhile a sender-only frame runs; a broadcast is refused for a retry. Once healed, a
    broadcast reaches every page within seconds, and nothing ran twice."""
    from tests.proxy import Proxy
    from tests.servers import redis_server

    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis_port, Proxy(redis_port) as proxy:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{proxy.port}", "ATTACK19_DIR": tmp}
        with daphne("tests.attack19_asgi:application", env=env) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            url = f"ws://127.0.0.1:{port}/ws/attack/counter/hole/?hypergen_socket="
            pages = [await connect(url + f"hole-page-{n:04d}", origin=origin) for n in range(5)]
            frames: dict[int, list] = {n: [] for n in range(5)}

            async def read(n):
                with contextlib.suppress(Exception):
                    async for text in pages[n]:
                        frames[n].append(json.loads(text))

            readers = [asyncio.create_task(read(n)) for n in range(5)]
            await pages[0].send(json.dumps({"args": ["shout", "before"], "meta": {"id": 1}}))
            await until(
                lambda: all(any(c[0] == "shouted" for f in frames[n] for c in f) for n in range(5)), f"before {frames}"
            )
            proxy.blackhole("up")
            started = time.monotonic()
            await pages[1].send(json.dumps({"args": ["bump"], "meta": {"id": 1}}))
            await until(lambda: any(c[0] == "bumped" for f in frames[1] for c in f), "a sender-only frame ran", 15)
            first_bump = time.monotonic() - started
            await pages[2].send(json.dumps({"args": ["bump"], "meta": {"id": 1}}))
            t = time.monotonic()
            await until(lambda: any(c[0] == "bumped" for f in frames[2] for c in f), "another page's ran", 15)
            second_bump = time.monotonic() - t
            await pages[0].send(json.dumps({"args": ["shout", "during"], "meta": {"id": 2}}))
            await until(lambda: any(c[0] == "hypergen.websocket.error" for f in frames[0] for c in f), "refused", 15)
            errors = [c for f in frames[0] for c in f if c[0] == "hypergen.websocket.error"]
            proxy.blackhole(None)
            healed = time.monotonic()
            n_id = 3
            reached = False
            while time.monotonic() < healed + 30 and not reached:
                text = f"after {n_id}"
                await pages[0].send(json.dumps({"args": ["shout", text], "meta": {"id": n_id}}))
                n_id += 1
                with contextlib.suppress(AssertionError):
                    await until(
                        lambda: all(any(c == ["shouted", text] for f in frames[n] for c in f) for n in range(5)), "", 2
                    )
                    reached = True
            recovered_after = time.monotonic() - healed
            for reader in readers:
                reader.cancel()
            for page in pages:
                await page.close()
            print(
                f"first bump {first_bump:.2f}s, second {second_bump:.2f}s, errors {errors}, recovered in {recovered_after:.1f}s"
            )
            assert errors and errors[0][1]["code"] == "layer_unavailable" and errors[0][1].get("retry") is True
            assert reached, "a broadcast reached every page within 30 s of the hole healing\n" + read_log_tail(process)
            assert (Path(tmp) / "bump-hole").read_text().count("run") == 2


# --- 4. recovery that "succeeds" without asking Redis -------------------------------------


async def test_a_process_whose_pages_all_left_does_not_spin_while_redis_is_down():
    """A process that once had an on_presence page keeps its presence listener (tracked by
    recovery) after the page left; the listener then has no groups. When Redis goes down, the
    recovery pass has no group to add, so it 'succeeds' without touching Redis, wakes the
    listener, whose receive fails at once, which starts another pass: a hot loop for as long
    as Redis is down (seen in tests/test_delivery_browser.py's daphne logs too: ~4,000
    recoveries/s, each also re-writing presence in a task that fails)."""
    from tests.servers import read_log, restartable_redis

    with restartable_redis() as redis:
        with daphne("tests.asgi:application", env={"TEST_REDIS_URL": redis.url}) as (port, process):
            async with lobby(port) as page:
                await until_listed(page, 1)
            await asyncio.sleep(1)  # The page has left; the listener stays, in no group.
            redis.stop()
            await asyncio.sleep(3)  # Redis down for 3 s (a restart, a failover).
            redis.start()
            await asyncio.sleep(1)
            failures = read_log(process).count("presence listener: channel layer receive failed")
            assert failures < 50, f"{failures} listener receive failures in a 3 s outage (one probe every 0.2 s)"


# --- 5. the in-memory window's last positions, LRU-bounded ---------------------------------


@pytest.mark.parametrize("bound", [3])
async def test_a_room_whose_last_position_was_evicted_while_its_frames_are_kept_does_not_lose_them_silently(
    bound, monkeypatch
):
    """MemoryWindow keeps the last positions of at most MEMORY_LAST_POSITIONS groups (100,000;
    3 here, the same code path: a job that sends to each of 100,000 users' own groups within a
    room's replay_seconds does it). Evicting a room's last position while its frames are still
    kept makes a returning page look caught up: read_after answers "no history", the page is
    moved to the empty position, and the frames it missed are neither replayed nor resynced."""
    from hypergen_consumers import aconsumer_command
    from hypergen_consumers.delivery import replay
    from hypergen_consumers.delivery.catchup import RESYNC_COMMAND
    from tests.test_delivery_streams import define_room, frames_until_quiet, open_socket, positions_in, receive

    monkeypatch.setattr(replay, "MEMORY_LAST_POSITIONS", bound)
    Room, _ = define_room()
    group = Room.group_name(room="evicted")
    await aconsumer_command(group, [["said", "seen"]])
    page = await open_socket(Room, "evicted", socket_id="evicted-page-1")
    position = positions_in(await receive(page))[0]
    await page.disconnect()
    await aconsumer_command(group, [["said", "missed"]])  # The page is away.
    for n in range(bound):
        await aconsumer_command(f"someone-else-{n}", [["said", "elsewhere"]])
    back = await open_socket(Room, "evicted", socket_id="evicted-page-1", positions={0: position})
    frames = await frames_until_quiet(back)
    await back.disconnect()
    got_it = any(command == ["said", "missed"] for frame in frames for command in frame)
    resynced = any(command[0] == RESYNC_COMMAND for frame in frames for command in frame)
    assert got_it or resynced, f"the missed frame was neither replayed nor resynced: {frames}"


# --- 6. order while waiting for a catch-up slot (held) ------------------------------------


async def test_a_page_waiting_for_a_catch_up_slot_gets_missed_then_live_frames_in_order_once():
    """Both slots are taken; a page resumes three runs behind and waits; meanwhile the room
    gets live frames and runs. Once a slot frees: the three runs, then the live ones, in
    stream order, each once, positions strictly increasing."""
    from hypergen_consumers import aconsumer_command, agroup_send
    from hypergen_consumers.delivery import catchup
    from hypergen_consumers.delivery.replay import position_key
    from tests.test_delivery_streams import frames_until_quiet, open_socket, positions_in, receive
    from tests.test_resume_storm import define_room

    runs: list[str] = []
    Room = define_room(runs)
    group = Room.group_name(room="order")
    page = await open_socket(Room, "order", socket_id="order-page-1")
    position = positions_in(await receive(page))[0]
    await page.disconnect()
    for n in range(3):
        await agroup_send(group, "tick", n)
    slots = catchup._replaying_runs()
    await slots.acquire()
    await slots.acquire()
    try:
        back = await open_socket(Room, "order", socket_id="order-page-1", positions={0: position})
        await asyncio.sleep(0.2)
        await aconsumer_command(group, [["tick", "live-a"]])
        await agroup_send(group, "tick", 3)
        await aconsumer_command(group, [["tick", "live-b"]])
        assert await back.receive_nothing(0.3), "nothing before a slot frees"
    finally:
        slots.release()
        slots.release()
    frames = await frames_until_quiet(back)
    await back.disconnect()
    ticks = [command[1] for frame in frames for command in frame if command[0] == "tick"]
    positions = [p for frame in frames for p in positions_in(frame).values()]
    assert ticks == [0, 1, 2, "live-a", 3, "live-b"], frames
    assert [position_key(p) for p in positions] == sorted(set(position_key(p) for p in positions)), positions


# --- 7. a Redis restart at 1,000 presence connections ---------------------------------------


@pytest.mark.soak  # Not in the version matrix: noxfile.py says why.
async def test_a_redis_restart_at_a_thousand_presence_connections_restores_every_entry_without_spinning():
    """1,000 pages, each alone in its own on_presence room, on one daphne over the defaults.
    Redis restarts empty (2 s down). Within 20 s every page is present in Redis again, and the
    process did not spin meanwhile."""
    import redis as redis_sync

    from tests.servers import read_log, restartable_redis

    with restartable_redis() as redis:
        redis_port = redis.port
        env = {"TEST_REDIS_URL": redis.url}
        with daphne("tests.asgi:application", env=env) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            async with contextlib.AsyncExitStack() as stack:

                async def one(n: int):
                    return await stack.enter_async_context(
                        connect(
                            f"ws://127.0.0.1:{port}/ws/tests/lobby/r{n}/",
                            origin=origin,
                            max_queue=None,
                            open_timeout=60,
                        )
                    )

                pages = []
                for start in range(0, 1000, 100):
                    pages += await asyncio.gather(*(one(n) for n in range(start, start + 100)))

                def present() -> int:
                    client = redis_sync.Redis(port=redis_port)
                    try:
                        return sum(client.hlen(key) for key in client.scan_iter("asgi:hc:presence:g:*", count=1000))
                    finally:
                        client.close()

                await until(lambda: present() == 1000, f"1,000 present before ({present()})", 60)
                redis.stop()
                await asyncio.sleep(2)
                redis.start()
                deadline = time.monotonic() + 20
                count = 0
                while time.monotonic() < deadline:
                    with contextlib.suppress(Exception):
                        count = present()
                    if count == 1000:
                        break
                    await asyncio.sleep(0.5)
                log = read_log(process)
                listener = log.count("presence listener: channel layer receive failed")
                readding = log.count("presence: re-adding")
                print(f"present after restart: {count}; listener failures {listener}; re-adding {readding}")
                assert count == 1000, f"{count} of 1,000 present 20 s after the restart\n{log[-3000:]}"
                assert listener < 50 and readding < 10, (listener, readding)


# --- 8. a frame claimed in Redis, re-sent after one claimed in the process ----------------


async def test_a_frame_claimed_in_redis_and_re_sent_after_an_outage_gets_its_kept_answer_not_a_resync():
    """A page sends ids 1 and 2; 1 is claimed in Redis and runs, then Redis becomes unreachable
    and 2 is claimed in the process and runs. Both acks are lost (the page's network blips),
    Redis comes back, the page reconnects and re-sends 1 and 2 as client.js does. Id 1's
    answer is kept in Redis, but the process store's "claimed here" is a watermark (1 <= 2),
    so 1 is looked up in the process store, not found, and the page is told to resync
    (a reload) instead of getting its answer. Nothing runs twice either way."""
    from tests.proxy import Proxy
    from tests.servers import redis_server

    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis_port, Proxy(redis_port) as proxy:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{proxy.port}", "ATTACK19_DIR": tmp}
        with daphne("tests.attack19_asgi:application", env=env) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            url = f"ws://127.0.0.1:{port}/ws/attack/counter/resent/?hypergen_socket=resent-page-0001"

            async def until_acked(socket, frame_id: int) -> list:
                frames = []
                while not any(c == ["hypergen.websocket.ack", frame_id] for f in frames for c in f):
                    frames.append(json.loads(await asyncio.wait_for(socket.recv(), 15)))
                return frames

            async with connect(url, origin=origin) as first:
                await first.send(json.dumps({"args": ["bump"], "meta": {"id": 1}}))
                await until_acked(first, 1)
                proxy.refuse(True)
                proxy.cut()
                await first.send(json.dumps({"args": ["bump"], "meta": {"id": 2}}))
                await until_acked(first, 2)
            proxy.refuse(False)
            await until_recovered(port, origin)  # The process knows Redis answers again.
            page = None
            for _ in range(60):  # Until the handshake is accepted again (Redis reachable).
                with contextlib.suppress(Exception):
                    page = await connect(url, origin=origin)
                    await page.send(json.dumps({"args": ["bump"], "meta": {"id": 1}}))
                    frames = await until_acked(page, 1)
                    break
                await asyncio.sleep(0.5)
            assert page is not None
            await page.close()
            runs = (Path(tmp) / "bump-resent").read_text().count("run")
            names = [c[0] for f in frames for c in f]
            assert runs == 2, f"ran {runs} times"
            assert "hypergen.websocket.resync" not in names, f"re-sent id 1 got a resync, not its kept answer: {frames}"


async def until_recovered(port: int, origin: str) -> None:
    """Until a broadcast from another page runs (the process left its outage)."""
    url = f"ws://127.0.0.1:{port}/ws/attack/counter/probe/?hypergen_socket=probe-page-0001"
    deadline = time.monotonic() + 30
    frame_id = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            async with connect(url, origin=origin) as probe:
                while time.monotonic() < deadline:
                    frame_id += 1
                    await probe.send(json.dumps({"args": ["shout", "up?"], "meta": {"id": frame_id}}))
                    while True:
                        frame = json.loads(await asyncio.wait_for(probe.recv(), 10))
                        names = [c[0] for c in frame]
                        if "shouted" in names:
                            return
                        if "hypergen.websocket.error" in names:
                            break
                    await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)
    raise AssertionError("the process never recovered")
