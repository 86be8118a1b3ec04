"""def handlers run in a bounded pool, one connection at a time, each with a timeout: a slow one
delays neither other connections nor handshakes."""

import asyncio
import gc
import json
import sys
import threading
import uuid
import weakref

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypergen.imports import command
from websockets.asyncio.client import connect

from hypergen_consumers import HANDLER_TIMEOUT, NO_PERM_REQUIRED, HypergenConsumer, consumer, handler
from hypergen_consumers.connection.executor import SerialLane
from hypergen_consumers.connection.lifecycle import run_event_method
from hypergen_consumers.testing import ConsumerClient
from tests.consumers import blocker_file
from tests.servers import daphne
from tests.support import wait_for


def frame(*args):
    return json.dumps({"args": list(args), "meta": {}})


async def receive(socket):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))


@pytest.mark.server
async def test_a_blocking_def_handler_delays_neither_other_connections_nor_handshakes():
    with daphne("tests.asgi:application") as (port, _):
        base, origin = f"ws://127.0.0.1:{port}/ws/tests/", f"http://127.0.0.1:{port}"
        token = uuid.uuid4().hex
        try:
            async with (
                connect(base + "blocker/", origin=origin) as blocked,
                connect(base + "blocker/", origin=origin) as other,
            ):
                await blocked.send(frame("block", token))
                await wait_for(blocker_file(token, "started").exists, timeout=10)
                blocked_reply = asyncio.ensure_future(receive(blocked))
                # Another connection's def handler, while the blocker holds its thread.
                await other.send(frame("quick"))
                assert await receive(other) == [["quick"]]
                # A new handshake through AuthMiddlewareStack (it loads the user in a thread).
                async with connect(base + "echo/newcomer/", origin=origin) as newcomer:
                    await newcomer.send(frame("shout", "hi"))
                    assert (await receive(newcomer))[1] == ["hypergen.append", "log", "hi"]
                assert not blocked_reply.done()
                blocker_file(token, "release").touch()
                # It was released by us, after the others were served: it had not given up.
                assert await blocked_reply == [["released"]]
        finally:
            for what in ("started", "release"):
                blocker_file(token, what).unlink(missing_ok=True)


def define_stuck(ran, release, **options):
    class Stuck(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler(**options)
        def block(self, request):
            ran.append("block started")
            release.wait(10)
            ran.append("block ended")
            command("block output")

        @handler
        def quick(self, request, who: str):
            ran.append(who)
            command("quick", who)

        @handler(timeout=0.2)
        def quick_or_nothing(self, request, who: str):
            ran.append(who)
            command("quick", who)

        @handler(timeout=0.2)
        async def sleepy(self, request):
            await asyncio.Event().wait()

    return Stuck


async def test_a_def_handler_past_its_timeout_answers_handler_timeout_and_its_output_is_discarded():
    ran, release = [], threading.Event()
    Stuck = define_stuck(ran, release, timeout=0.2)
    async with ConsumerClient(Stuck) as stuck, ConsumerClient(Stuck) as other:
        await stuck.send("block")
        error = await stuck.expect_error(HANDLER_TIMEOUT, timeout=5)
        assert error["message"].startswith("Stuck.block did not finish within 0.2 s")
        assert ran == ["block started"]  # Still running in its thread.
        # Other connections are served meanwhile.
        assert await other.call("quick", "other") == [["quick", "other"]]
        # The same connection's next handler waits for the straggler: they never overlap.
        await stuck.send("quick", "next")
        await wait_for(lambda: "other" in ran)
        release.set()
        assert await stuck.receive(timeout=5) == [["quick", "next"]]  # Not "block output": discarded.
        assert ran == ["block started", "other", "block ended", "next"]


async def test_an_async_handler_past_its_timeout_is_cancelled_and_the_connection_goes_on():
    ran, release = [], threading.Event()
    Stuck = define_stuck(ran, release)
    async with ConsumerClient(Stuck) as client:
        await client.send("sleepy")
        assert (await client.expect_error(HANDLER_TIMEOUT, timeout=5))["message"].startswith("Stuck.sleepy")
        assert await client.call("quick", "after") == [["quick", "after"]]


async def test_the_next_handler_that_waits_too_long_for_a_straggler_times_out_without_running():
    ran, release = [], threading.Event()
    Stuck = define_stuck(ran, release, timeout=0.2)
    async with ConsumerClient(Stuck) as client:
        await client.send("block")
        await client.expect_error(HANDLER_TIMEOUT, timeout=5)
        await client.send("quick_or_nothing", "waited")
        error = await client.expect_error(HANDLER_TIMEOUT, timeout=5)
        assert "waiting for this connection's previous handler" in error["message"]
        release.set()
        assert await client.call("quick", "then") == [["quick", "then"]]
        assert ran == ["block started", "block ended", "then"]


async def test_with_every_worker_stuck_a_queued_def_handler_times_out_and_never_runs_later():
    ran, release = [], threading.Event()
    with override_settings(HYPERGEN_CONSUMERS_WORKER_THREADS=1):
        Stuck = define_stuck(ran, release, timeout=0.2)
        async with ConsumerClient(Stuck) as stuck, ConsumerClient(Stuck) as queued, ConsumerClient(Stuck) as later:
            await stuck.send("block")
            await stuck.expect_error(HANDLER_TIMEOUT, timeout=5)
            await queued.send("quick_or_nothing", "queued")
            await queued.expect_error(HANDLER_TIMEOUT, timeout=5)
            release.set()
            assert await later.call("quick", "later") == [["quick", "later"]]
            assert ran == ["block started", "block ended", "later"]


def test_timeout_options_are_checked_at_class_creation():
    with pytest.raises(ImproperlyConfigured, match=r"Bad\.timeout must be a positive number of seconds"):

        class Bad(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            timeout = -1

            @handler
            def go(self, request): ...

    with pytest.raises(ImproperlyConfigured, match=r"Worse\.go\.timeout must be a positive number"):

        class Worse(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler(timeout="soon")
            def go(self, request): ...

    @consumer(perm=NO_PERM_REQUIRED, timeout=2)
    def patient(consumer, request): ...

    assert patient.timeout == 2.0 and patient._handlers["patient"].timeout == 2.0


class Paced(HypergenConsumer):
    """Async handlers that finish at once, await several times, fail after an await, or hang."""

    perm = NO_PERM_REQUIRED
    broadcast = False
    timeout = 0.3
    seen: list[str] = []

    @handler
    async def at_once(self, request, word: str):
        command("at_once", word)

    @handler
    async def after_awaits(self, request, word: str):
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        command("after_awaits", word, asyncio.current_task() is not None)

    @handler
    async def fails_after_an_await(self, request):
        await asyncio.sleep(0)
        raise ValueError("late")

    @handler
    async def hangs_after_an_await(self, request):
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(30)
        finally:
            type(self).seen.append("hang cleaned up")


async def test_an_async_handler_runs_the_same_whether_it_awaits_or_not():
    """Its first step runs without a timer (most handlers never await); the rest is timed."""
    async with ConsumerClient(Paced) as client:
        assert await client.call("at_once", "a") == [["at_once", "a"]]
        assert await client.call("after_awaits", "b") == [["after_awaits", "b", True]]
        await client.send("fails_after_an_await")
        assert "ValueError" in (await client.expect_error("handler_error", timeout=5))["message"]
        await client.send("hangs_after_an_await")
        assert (await client.expect_error(HANDLER_TIMEOUT, timeout=5))["message"].startswith(
            "Paced.hangs_after_an_await"
        )
        assert Paced.seen == ["hang cleaned up"]  # Cancelled at its await: its finally ran.
        assert await client.call("at_once", "c") == [["at_once", "c"]]


async def test_a_handler_that_computes_past_its_timeout_before_waiting_is_stopped_where_it_waits():
    """Python cannot interrupt a computation: the timeout takes effect where the handler next waits."""

    class Busy(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False
        timeout = 0.1
        reached: list[str] = []

        @handler
        async def busy(self, request):
            deadline = asyncio.get_running_loop().time() + 0.3
            while asyncio.get_running_loop().time() < deadline:
                pass
            await asyncio.sleep(0.05)
            type(self).reached.append("after the wait")

    async with ConsumerClient(Busy) as client:
        await client.send("busy")
        await client.expect_error(HANDLER_TIMEOUT, timeout=5)
        assert Busy.reached == []


async def test_a_handler_that_handles_its_cancellation_does_not_see_it_afterwards():
    """The timeout's cancellation is thrown into the handler as an await would throw it: once
    handled, it is neither the exception being handled nor the context of the next one."""
    seen = {}

    async def handles_it():
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            pass
        seen["handling"] = sys.exc_info()[0]
        raise ValueError("after")

    with pytest.raises(ValueError) as raised:
        await SerialLane().run_async("handles_it", 0.02, handles_it())
    assert seen["handling"] is None
    assert raised.value.__context__ is None
    assert asyncio.current_task().cancelling() == 0


async def test_an_event_method_leaves_its_class_free_to_go():
    class Passing:
        async def passing_event(self, message):
            super().__init__()  # A method using super() refers to its class.

    await run_event_method(Passing().passing_event, {"type": "passing.event"})
    gone = weakref.ref(Passing)
    del Passing
    gc.collect()
    assert gone() is None
