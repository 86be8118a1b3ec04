"""Attacks on the per-message hot path: what a hostile or unlucky client, or a project's own
code, could break now that a connection's messages are dispatched by one pump task per source
(``connection/receivers``) instead of by the connection's own task."""

import asyncio
import contextvars
import logging
from decimal import Decimal
from typing import Annotated

import pytest
from channels.layers import get_channel_layer
from hypergen.imports import command
from pydantic import AfterValidator, PlainValidator

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, agroup_send, handler
from hypergen_consumers.testing import ConsumerClient

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("attack_tenant", default="none")


async def test_a_contextvar_set_while_handling_one_message_is_seen_while_handling_the_next_from_any_source():
    """Channels runs every message of a connection in its one task, so what ``connect()`` or an
    event method sets in a ContextVar (a tenant, Django's ``translation.activate``) holds for
    the next message. A client frame, a ``group_send`` run and a layer event come from three
    different sources here: each must still see it, and set it for the others."""
    connections = []

    class Tenant(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/tenant/"

        async def connect(self):
            TENANT.set("acme")
            connections.append(self)
            await self.accept()

        @handler(broadcast=False)
        async def who(self, request):
            command("tenant", TENANT.get())

        async def attack_switch(self, event):  # A channel-layer event of the project's own.
            await self.asend_commands([["tenant", TENANT.get()]])
            TENANT.set(event["to"])

    async with ConsumerClient(Tenant) as client:
        assert await client.call("who") == [["tenant", "acme"]]  # From the server.
        await agroup_send(Tenant.group_name(), "who")  # From the group (the connection's inbox).
        assert await client.receive() == [["tenant", "acme"]]
        await get_channel_layer().send(connections[0].channel_name, {"type": "attack.switch", "to": "globex"})
        assert await client.receive() == [["tenant", "acme"]]  # From the layer.
        assert await client.call("who") == [["tenant", "globex"]]
        await agroup_send(Tenant.group_name(), "who")
        assert await client.receive() == [["tenant", "globex"]]
    assert TENANT.get() == "none", "nothing leaks out of the connection into its caller"


SPAN: contextvars.ContextVar[str | None] = contextvars.ContextVar("attack_span", default=None)


def traced(application):
    """ASGI middleware that sets a ContextVar while it waits for the server's next message, as
    OpenTelemetry's ASGI middleware does (``start_as_current_span`` around ``receive()``)."""

    async def middleware(scope, receive, send):
        async def traced_receive():
            token = SPAN.set("receive")
            try:
                return await receive()
            finally:
                SPAN.reset(token)

        return await application(scope, traced_receive, send)

    return middleware


async def test_what_a_wrapped_receive_sets_while_it_waits_is_never_seen_by_a_run_from_another_source():
    """A connection mostly waits in the server's ``receive``. What a middleware sets around that
    wait belongs to the wait alone: a ``group_send`` run handled meanwhile (from the inbox) must
    not see it, nor have its own value undone when the wait ends (Channels read each source in
    a task of its own)."""
    from channels.testing import WebsocketCommunicator
    from hypergen.liveview import loads

    from hypergen_consumers.testing import DEFAULT_HEADERS, _application, frame

    entered, release = asyncio.Event(), asyncio.Event()

    class Traced(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/traced/"

        @handler(broadcast=False)
        async def who(self, request):
            command("span", SPAN.get())

        @handler(broadcast=False)
        async def spanned(self, request):
            token = SPAN.set("run")
            entered.set()
            await release.wait()
            command("span", SPAN.get())
            SPAN.reset(token)

    application, route = _application(Traced, None)
    page = WebsocketCommunicator(traced(application), "/" + route, headers=DEFAULT_HEADERS)
    assert (await page.connect())[0]
    await agroup_send(Traced.group_name(), "who")
    assert loads(await page.receive_from(2)) == [["span", None]]
    await agroup_send(Traced.group_name(), "spanned")
    await asyncio.wait_for(entered.wait(), 2)
    await page.send_to(text_data=frame("who"))  # Ends the server's wait while the run waits.
    await asyncio.sleep(0)
    release.set()
    assert loads(await page.receive_from(2)) == [["span", "run"]]
    assert loads(await page.receive_from(2)) == [["span", None]]
    await page.disconnect()


def define_echo():
    class Echo(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/echo/"

        @handler(broadcast=False)
        async def echo(self, request, n: int):
            command("n", n)

    return Echo


async def test_one_clients_burst_of_frames_does_not_hold_up_every_other_connection():
    """daphne hands the app its client's frames through an asyncio.Queue, and sends without
    waiting; a handler that awaits nothing never waits either. One TCP read can queue
    thousands of small frames: handled without a turn for anyone else, the whole process
    stalled until the last was answered. The other connection's frame, sent after the burst,
    must be answered long before the burst is."""
    Echo = define_echo()
    async with ConsumerClient(Echo) as flooder, ConsumerClient(Echo) as other:
        for n in range(500):
            await flooder.send("echo", n)  # With the server at once, as one TCP read hands them over.
        await other.send("echo", -1)
        assert await other.receive() == [["n", -1]]
        answered = flooder.communicator.output_queue.qsize()
        assert answered < 50, f"the other connection waited for {answered} of the burst's 500 frames"
        for n in range(500):
            assert await flooder.receive() == [["n", n]], "the burst itself, answered in order"


@pytest.mark.parametrize("moment", ["while it waits", "as it wakes"])
async def test_what_a_dispatch_raises_instead_of_the_cancellation_reaches_the_server(moment):
    """daphne cancels an application that outlives its socket. An event method whose clean-up
    fails (cancelled while it waits, or woken in the very loop turn the cancellation comes) ended
    Channels' loop with that error, for the server to log; it must not vanish in a pump."""
    entered, gate, connections = asyncio.Event(), asyncio.Event(), []

    class Cleanup(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/cleanup/"

        async def connect(self):
            connections.append(self)
            await self.accept()

        @handler
        async def noop(self, request):
            pass

        async def attack_hang(self, event):
            entered.set()
            try:
                await gate.wait()
            finally:
                raise RuntimeError("the clean-up failed")

    client = ConsumerClient(Cleanup)
    await client.connect()
    await get_channel_layer().send(connections[0].channel_name, {"type": "attack.hang"})
    await asyncio.wait_for(entered.wait(), 5)
    if moment == "as it wakes":
        gate.set()
    application = client.communicator.future
    application.cancel()
    with pytest.raises(RuntimeError, match="the clean-up failed"):
        await application


async def test_a_send_of_a_mixin_after_the_packages_sees_every_frame_out():
    """Frames go to the server directly only while nobody's ``send`` stands between the package's
    and Channels'. A mixin listed after ``HypergenConsumer`` (its ``send`` follows the package's
    in the MRO) must see the heartbeat's answer, a reply, a group frame and an error frame."""
    from channels.generic.websocket import AsyncWebsocketConsumer

    from hypergen_consumers.connection.heartbeat import HEARTBEAT_FRAME, HEARTBEAT_REPLY

    sent = []

    class Audited(AsyncWebsocketConsumer):
        async def send(self, text_data=None, bytes_data=None, close=False):
            sent.append(text_data)
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    class Room(HypergenConsumer, Audited):
        perm = NO_PERM_REQUIRED
        path = "attack/audited/"

        @handler(broadcast=False)
        async def echo(self, request, n: int):
            command("n", n)

    async with ConsumerClient(Room) as client:
        await client.send_text(HEARTBEAT_FRAME)
        assert await client.receive() == [["hypergen.websocket.heartbeat"]]
        assert await client.call("echo", 1) == [["n", 1]]
        await agroup_send(Room.group_name(), "echo", 2)
        assert await client.receive() == [["n", 2]]
        await client.send("echo", "x")
        await client.expect_error("validation_error")
    assert len(sent) == 4 and sent[0] == HEARTBEAT_REPLY and '"validation_error"' in sent[3], sent


async def test_a_handler_that_raises_cancelled_error_ends_its_connection_alone_and_nothing_is_left_unretrieved():
    """A handler raising CancelledError itself (not a cancellation of its task) ends its
    connection, as it ended Channels' loop; the other connections go on, its pumps end with it,
    and the loop is told of no exception nobody retrieved."""
    reported = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    try:

        class Quitter(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            path = "attack/quitter/"

            @handler(broadcast=False)
            async def quit(self, request):
                raise asyncio.CancelledError()

            @handler(broadcast=False)
            async def echo(self, request, n: int):
                command("n", n)

        async with ConsumerClient(Quitter) as other:
            quitter = ConsumerClient(Quitter)
            await quitter.connect()
            await quitter.send("quit")
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(quitter.communicator.future), 5)
            assert await other.call("echo", 1) == [["n", 1]]
            await agroup_send(Quitter.group_name(), "echo", 2)
            assert await other.receive() == [["n", 2]]
        import gc

        gc.collect()
        await asyncio.sleep(0)
        assert reported == []
    finally:
        loop.set_exception_handler(None)


def to_decimal(value: str) -> Decimal:
    """``Decimal`` itself, as a one-argument validator (pydantic before 2.5 passed its info too)."""
    return Decimal(value)


def to_float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def to_quantity(value: object) -> int:
    """A validator with a bug: ``int(None)`` raises TypeError, which pydantic passes on."""
    return int(value)  # type: ignore[call-overload]


def define_typed():
    class Typed(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/typed/"

        @handler(broadcast=False)
        async def price(self, request, amount: Annotated[str, AfterValidator(to_decimal)]):
            command("amount", str(amount))

        @handler(broadcast=False)
        async def ratio(self, request, value: Annotated[int, PlainValidator(to_float)]):
            command("ratio", str(value))

        @handler(broadcast=False)
        async def order(self, request, quantity: Annotated[object, PlainValidator(to_quantity)]):
            command("quantity", quantity)

    return Typed


@pytest.mark.parametrize(
    ("name", "value"), [("price", "NaN"), ("price", "-Infinity"), ("ratio", "nan"), ("ratio", "1e999")]
)
async def test_a_str_or_int_parameter_whose_own_validator_makes_it_non_finite_is_refused(name, value):
    """A parameter annotated ``str`` or ``int`` skips the non-finite walk, as its value cannot
    be NaN; but ``Annotated[str, AfterValidator(Decimal)]`` (money read from a string) turns
    the client's "NaN" into ``Decimal('NaN')``, and a ``PlainValidator`` returns what it likes."""
    async with ConsumerClient(define_typed()) as client:
        await client.send(name, value)
        error = await client.expect_error("validation_error")
        assert [entry["type"] for entry in error["errors"]] == ["finite_number"]
        assert await client.call("price", "1.50") == [["amount", "1.50"]]


@pytest.mark.parametrize(
    ("name", "value", "raised"), [("price", "abc", "InvalidOperation"), ("order", None, "TypeError")]
)
async def test_a_validator_that_raises_what_pydantic_does_not_catch_answers_handler_error_and_the_socket_lives(
    name, value, raised, caplog
):
    """pydantic turns only ValueError and AssertionError into validation errors; ``Decimal("abc")``
    raises InvalidOperation and ``int(None)`` TypeError, straight through. A client sending
    such input gets ``handler_error`` (the project's validator failed, as if its handler had),
    the log says what to raise instead, and the sender's connection and every other stay up."""
    Typed = define_typed()
    async with ConsumerClient(Typed) as sender, ConsumerClient(Typed) as bystander:
        with caplog.at_level(logging.ERROR, logger="hypergen_consumers"):
            for _ in range(3):
                await sender.send(name, value)
                error = await sender.expect_error("handler_error")
                assert raised in error["message"]
        assert any("a validator must raise ValueError" in record.getMessage() for record in caplog.records)
        assert await sender.call("price", "1.50") == [["amount", "1.50"]]
        assert await sender.call("order", "2") == [["quantity", 2]]
        assert await bystander.call("price", "2.25") == [["amount", "2.25"]]


async def test_a_group_send_whose_arguments_break_a_validator_ends_no_members_connection():
    """The neighbour: the same bug reached through ``group_send`` runs in every member's
    connection at once. Each member is told ``handler_error`` and keeps its connection."""
    Typed = define_typed()
    async with ConsumerClient(Typed) as first, ConsumerClient(Typed) as second:
        await agroup_send(Typed.group_name(), "order", None)
        for member in (first, second):
            assert "TypeError" in (await member.expect_error("handler_error"))["message"]
        await agroup_send(Typed.group_name(), "order", "3")
        assert await first.receive() == [["quantity", 3]]
        assert await second.receive() == [["quantity", 3]]


def test_only_plain_int_str_bool_bytes_parameters_skip_the_non_finite_walk():
    """Anything in ``Annotated[...]`` or ``Field(...)`` is walked: a validator may make NaN, and
    a plain constraint's walk is short."""
    from pydantic import Field, constr

    class Walked(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/walked/"

        @handler
        async def mixed(
            self,
            request,
            a: int,
            b: Annotated[int, Field(gt=0)],
            c: constr(max_length=3),
            d: Annotated[str, AfterValidator(to_decimal)],
            e: float,
            f: bool,
        ):
            pass

    assert [param.name for param in Walked._handlers["mixed"]._fields[2]] == ["b", "c", "d", "e"]


def test_a_method_patched_onto_hypergens_context_or_pyrsistents_map_later_is_still_found(monkeypatch):
    """The context and the rendering state answer their keys before a failed lookup now; a name
    that is no key must still be looked up as before, also one the class got after import."""
    from hypergen.context import Context, context
    from pyrsistent import PMap

    from hypergen_consumers._compat.pmap import fast_pmap

    monkeypatch.setattr(Context, "helper", lambda self: "context's", raising=False)
    monkeypatch.setattr(PMap, "helper", lambda self: "map's", raising=False)
    with context(key=1):
        assert (context.helper(), context.key) == ("context's", 1)
        with pytest.raises(AttributeError, match="No such attribute: missing"):
            context.missing  # noqa: B018
    state = fast_pmap({"commands": [1]})
    assert (state.helper(), state.commands, getattr(state, "missing", None)) == ("map's", [1], None)


def cancels(value: object) -> object:
    """A validator that raises asyncio's CancelledError itself (a BaseException since Python 3.8)."""
    raise asyncio.CancelledError()


async def test_a_cancelled_error_raised_by_a_validator_answers_handler_error_and_the_socket_lives():
    """Binding the arguments awaits nothing, so no cancellation of the connection's task can
    arrive inside it: a CancelledError from there is the validator's own. Let through, the pump
    took it for the loop's end and the connection closed with nothing said."""

    class Cancels(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/cancels/"

        @handler(broadcast=False)
        async def order(self, request, quantity: Annotated[object, PlainValidator(cancels)]):
            command("quantity", quantity)

        @handler(broadcast=False)
        async def ping(self, request):
            command("pong")

    async with ConsumerClient(Cancels) as client:
        await client.send("order", 1)
        assert "CancelledError" in (await client.expect_error("handler_error"))["message"]
        assert await client.call("ping") == [["pong"]]


def refuses(value: object) -> object:
    raise TypeError(f"no {value!r}")


async def test_a_url_kwarg_that_breaks_a_validator_answers_handler_error_for_on_connect_and_each_handler():
    """URL kwargs are bound on every run, hooks too: a validator that raises TypeError for one
    fails ``on_connect`` (no client arguments) and each handler taking it, counted as
    ``handler_error``; the connection and its other handlers stay."""
    from prometheus_client import REGISTRY

    class ByRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/by-room/<slug:room>/"

        def on_connect(self, request, room: Annotated[str, PlainValidator(refuses)]):
            command("room", room)

        @handler(broadcast=False)
        async def where(self, request, room: Annotated[str, PlainValidator(refuses)]):
            command("room", room)

        @handler(broadcast=False)
        async def ping(self, request):
            command("pong")

    async with ConsumerClient(ByRoom, room="lobby") as client:
        assert "on_connect" in (await client.expect_error("handler_error"))["message"]
        await client.send("where")
        assert "TypeError" in (await client.expect_error("handler_error"))["message"]
        assert await client.call("ping") == [["pong"]]
    labels = {"consumer": "ByRoom", "handler": "where", "outcome": "handler_error"}
    assert REGISTRY.get_sample_value("hypergen_consumers_frames_total", labels) == 1


async def test_a_flood_of_frames_that_break_a_validator_stays_within_the_log_budget(caplog):
    """Each such frame logs a traceback; a hostile client sending hundreds of them gets as many
    ``handler_error`` frames and writes no more lines than the process's mistake budget."""
    from hypergen_consumers.wire.mistake_log import mistakes

    Typed = define_typed()
    mistakes.reset()
    async with ConsumerClient(Typed) as flooder, ConsumerClient(Typed) as bystander:
        with caplog.at_level(logging.WARNING, logger="hypergen_consumers"):
            for _ in range(300):
                await flooder.send("order", None)
            for _ in range(300):
                await flooder.expect_error("handler_error")
        assert len(caplog.records) <= mistakes.lines + 1  # The budget, and the count of the rest.
        assert await bystander.call("order", "2") == [["quantity", 2]]
    mistakes.reset()


async def test_a_connection_closed_while_three_sources_hold_messages_ends_cleanly_and_ran_one_at_a_time():
    """Client frames, ``group_send`` runs and layer events queue up while a handler waits; the
    page then goes. The pumps waiting for their turn are cancelled there, and none of the
    connection's dispatches ever overlapped."""
    running, overlapped, connections = [0], [], []

    class Busy(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "attack/busy/"

        async def connect(self):
            connections.append(self)
            await self.accept()

        async def enter(self, what):
            running[0] += 1
            if running[0] > 1:
                overlapped.append(what)
            try:
                await asyncio.sleep(0.001)
            finally:
                running[0] -= 1

        @handler(broadcast=False)
        async def work(self, request, n: int):
            await self.enter(("frame", n))
            command("n", n)

        async def attack_work(self, event):
            await self.enter(("event", event["n"]))

    client = ConsumerClient(Busy)
    await client.connect()
    layer = get_channel_layer()
    for n in range(20):
        await client.send("work", n)
        await agroup_send(Busy.group_name(), "work", 100 + n)
        await layer.send(connections[0].channel_name, {"type": "attack.work", "n": n})
    await asyncio.sleep(0.01)
    await asyncio.wait_for(client.close(), 5)
    await asyncio.wait_for(client.communicator.wait(), 5)
    assert not overlapped
