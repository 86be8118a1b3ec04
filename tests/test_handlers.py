"""Handler dispatch, argument binding and coercion, rendering, hooks and delivery."""

import asyncio
import datetime
import sys
import threading
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from hypergen.context import context
from hypergen.context import context as hypergen_context
from hypergen.imports import button, callback, command, div, span
from pydantic import BaseModel

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, autoconsumers, consumer, handler
from hypergen_consumers.testing import ConsumerClient
from tests.support import wait_for


async def test_a_class_with_one_handler_still_reads_its_name_first():
    class Echo(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def echo(self, request, first, second="default"):
            command("echo", first, second)

    async with ConsumerClient(Echo) as client:
        assert await client.call("echo", "x") == [["echo", "x", "default"]]
        assert await client.call("echo", 1, 2) == [["echo", 1, 2]]
        assert (await client.call("typing"))[0][1]["code"] == "unknown_handler"  # User text is never a name.


async def test_a_consumer_function_takes_the_callback_args_directly():
    @consumer(perm=NO_PERM_REQUIRED)
    def echo(consumer, request, first, second="default"):
        command("echo", first, second)

    async with ConsumerClient(echo) as client:
        assert await client.call("echo", "x") == [["echo", "echo", "x"]]
        assert await client.call(1) == [["echo", 1, "default"]]


async def test_url_kwargs_bind_by_name_and_client_args_fill_the_rest_in_order():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<str:room>/<int:page>/"

        @handler
        def post(self, request, text, room: str, count: int, page: int):
            command("got", text, room, count, page)

        @handler
        def tagged(self, request, text, *, room):
            command("tagged", text, room)

    async with ConsumerClient(Room, room="vip", page=3) as client:
        assert await client.call("post", "hi", "7") == [["got", "hi", "vip", 7, 3]]
        assert await client.call("tagged", "yo") == [["tagged", "yo", "vip"]]
        assert client.path == "/ws/test/room/vip/3/"


async def test_annotations_are_validated_and_coerced_in_lax_mode():
    class Message(BaseModel):
        text: str
        priority: int = 0

    class Typed(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        def post(
            self,
            request,
            message: Message,
            when: datetime.date,
            tags: set[str],
            pair: tuple[int, int],
            anything,
            flag: bool = False,
        ):
            assert isinstance(message, Message)
            command("got", message.text, message.priority, when, sorted(tags), list(pair), anything, flag)

    async with ConsumerClient(Typed) as client:
        commands = await client.call(
            "post",
            {"text": "hi", "priority": "2"},
            datetime.date(2024, 2, 29),
            {"b", "a"},
            ("1", 2),
            {"free": [1]},
            "yes",
        )
        assert commands == [["got", "hi", 2, datetime.date(2024, 2, 29), ["a", "b"], [1, 2], {"free": [1]}, True]]


async def test_only_marked_methods_are_reachable():
    calls = []

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def public(self, request):
            calls.append("public")
            command("ok")

        @handler
        def other(self, request): ...

        def private(self, request):  # pragma: no cover - must never run
            calls.append("private")

    async with ConsumerClient(Room) as client:
        await client.send("private")
        await client.expect_error("unknown_handler")
        assert await client.call("public") == [["ok"]]
    assert calls == ["public"]


async def test_sync_handlers_run_in_a_worker_thread_and_can_use_the_orm():
    loop_thread = threading.current_thread()

    class Users(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def create(self, request, username: str):
            assert threading.current_thread() is not loop_thread
            User.objects.create_user(username)
            command("count", User.objects.count())

        @handler
        async def where(self, request):
            command("same_thread", threading.current_thread() is loop_thread)

    async with ConsumerClient(Users) as client:
        assert await client.call("create", "ann") == [["count", 1]]
        assert await client.call("where") == [["same_thread", True]]
    assert await sync_to_async(User.objects.filter(username="ann").exists)()


async def test_rendered_html_is_morphed_into_target_id_with_callbacks_registered():
    class Panel(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "panel"

        @handler
        def show(self, request):
            with div(id_="box"):
                button("again", id_="again", onclick=callback(Panel))
            command("after")

    autoconsumers(sys.modules[__name__], "handlers")
    async with ConsumerClient(Panel) as client:
        commands = await client.call("show")
    url = "ws://testserver/ws/handlers/panel/"
    assert commands[0] == [
        "hypergen.setClientState",
        "hypergen.eventHandlerCallbacks",
        {
            "again__onclick": [
                "hypergen.callback",
                url,
                [],
                {
                    "debounce": 0,
                    "confirm_": False,
                    "blocks": False,
                    "uploadFiles": False,
                    "clear": False,
                    "elementId": "again",
                    "debug": False,
                    "meta": {},
                    "headers": {},
                    "eachUrlBlocks": True,
                    "timeout": 20000,
                },
            ]
        },
    ]
    assert commands[1:] == [
        [
            "hypergen.morph",
            "panel",
            '<div id="box"><button id="again" onclick="hypergen.event(event, \'again__onclick\')">again</button></div>',
        ],
        ["after"],
    ]


async def test_broadcast_goes_to_the_group_and_sender_only_output_to_the_sender():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def everyone(self, request, text):
            command("all", text)

        @handler(broadcast=False)
        def just_me(self, request, text):
            command("me", text)

    async with ConsumerClient(Room) as a, ConsumerClient(Room) as b:
        await a.send("everyone", 1)
        assert await a.receive() == [["all", 1]]
        assert await b.receive() == [["all", 1]]
        await a.send("just_me", 2)
        assert await a.receive() == [["me", 2]]
        await b.expect_nothing()


async def test_class_level_broadcast_false_and_handler_override():
    class Private(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        def mine(self, request):
            command("mine")

        @handler(broadcast=True)
        def shout(self, request):
            command("shout")

    async with ConsumerClient(Private) as a, ConsumerClient(Private) as b:
        assert await a.call("mine") == [["mine"]]
        await b.expect_nothing()
        assert await a.call("shout") == [["shout"]]
        assert await b.receive() == [["shout"]]


async def test_a_handler_that_renders_nothing_sends_nothing():
    class Quiet(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def noop(self, request):
            self.touched = True

    async with ConsumerClient(Quiet) as client:
        await client.send("noop")
        await client.expect_nothing()


async def test_hooks_and_channels_connect_keep_their_meanings():
    events = []

    class Hooked(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "hooked/<slug:name>/"
        target_id = "hello"

        async def connect(self):  # Channels' meaning: decide, then accept.
            self.count = 0
            events.append("connect")
            await super().connect()

        def on_connect(self, request, name):
            events.append(("on_connect", name, self.count, self.group_name() == Hooked.group_name(name=name)))
            span("Hello ", name)

        async def on_disconnect(self, request, code):
            events.append(("on_disconnect", code))

        @handler
        def bump(self, request):
            self.count += 1
            command("count", self.count)

    async with ConsumerClient(Hooked, name="ann") as ann, ConsumerClient(Hooked, name="ann") as bob:
        assert await ann.receive() == [["hypergen.morph", "hello", "<span>Hello ann</span>"]]
        assert await bob.receive() == [["hypergen.morph", "hello", "<span>Hello ann</span>"]]
        await ann.expect_nothing()  # on_connect output went to the new connection only.
        assert await ann.call("bump") == [["count", 1]]
        assert await bob.receive() == [["count", 1]]
        assert await ann.call("bump") == [["count", 2]]
        await bob.receive()
        await ann.close(code=4000)
    # Each connection: connect (Channels' meaning) first, then on_connect. The two connections'
    # hooks may interleave (on_connect is a def: it runs in the worker pool after the accept).
    assert events[0] == "connect" and events.count("connect") == 2
    assert [event for event in events if event != "connect"][:2] == [("on_connect", "ann", 0, True)] * 2
    assert ("on_disconnect", 4000) in events


async def test_channels_connect_may_deny_and_then_nothing_joins():
    class Closed(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        async def connect(self):
            await self.close()

        @handler
        def post(self, request): ...

    client = ConsumerClient(Closed)
    accepted, _ = await client.communicator.connect()
    assert accepted is False
    await wait_for(lambda: get_channel_layer().groups == {})  # It joined, then left when connect() closed.


async def test_user_plugins_take_part_in_rendering():
    seen = []

    class Recorder:
        def template_after(self, **kwargs: Any):
            seen.append(kwargs["template_result"])

    class Plugged(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        user_plugins = [Recorder()]

        @handler
        def post(self, request):
            command("x")
            return "result"

    async with ConsumerClient(Plugged) as client:
        assert await client.call("post") == [["x"]]
    assert seen == ["result"]


@pytest.mark.parametrize("kind", ["def", "async def"])
async def test_plugins_with_a_context_or_template_before_are_entered_as_hypergen_enters_them(kind):
    """Plugins that offer context_items() (or nothing to enter) take the one-step set-up; a
    plugin with its own context() or a template_before is run as hypergen() runs it."""
    seen = []

    class Entered:
        @contextmanager
        def context(self):
            with hypergen_context(at="hypergen", entered="yes"):
                seen.append("entered")
                yield
            seen.append("left")

        def template_before(self):
            seen.append("before")

    class Items:
        def context_items(self):
            return {"item": "from items"}

    class Plugged(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "t"
        user_plugins = [Entered(), Items()]

        if kind == "def":

            @handler
            def post(self, request):
                span("html")
                command("seen", context.hypergen.entered, context.hypergen.item)

        else:

            @handler
            async def post(self, request):
                await asyncio.sleep(0)
                span("html")
                command("seen", context.hypergen.entered, context.hypergen.item)

    class Light(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "t"
        user_plugins = [Items()]

        @handler
        async def post(self, request):
            span("light")
            command("seen", context.hypergen.item)

    async with ConsumerClient(Plugged) as client, ConsumerClient(Light) as light:
        assert await client.call("post") == [
            ["hypergen.morph", "t", "<span>html</span>"],
            ["seen", "yes", "from items"],
        ]
        assert await light.call("post") == [["hypergen.morph", "t", "<span>light</span>"], ["seen", "from items"]]
    assert seen == ["entered", "before", "left"]


async def test_matched_perms_are_in_the_rendering_context():
    class Perms(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def post(self, request):
            command("perms", sorted(context.hypergen.matched_perms))

    async with ConsumerClient(Perms) as client:
        assert await client.call("post") == [["perms", []]]


async def test_broadcasts_arrive_in_the_same_order_everywhere():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        async def post(self, request, who: str, n: int):
            await asyncio.sleep(0)
            command("msg", who, n)

    clients = [ConsumerClient(Room) for _ in range(4)]
    for client in clients:
        await client.connect()
    try:
        per_sender = 25
        await asyncio.gather(
            *(client.send("post", f"c{index}", n) for n in range(per_sender) for index, client in enumerate(clients))
        )
        sequences = []
        for client in clients:
            sequences.append([tuple((await client.receive())[0][1:]) for _ in range(per_sender * len(clients))])
        assert all(sequence == sequences[0] for sequence in sequences)
        for index in range(len(clients)):
            assert [n for who, n in sequences[0] if who == f"c{index}"] == list(range(per_sender))
    finally:
        for client in clients:
            await client.close()


async def test_a_broadcast_to_1000_receivers_is_rendered_once_and_encoded_once_per_message(monkeypatch):
    from hypergen_consumers.connection import pipeline

    encodes, renders = [], []
    real_encode = pipeline.encode

    def counting_encode(data, *args, **kwargs):
        encodes.append(data)
        return real_encode(data, *args, **kwargs)

    monkeypatch.setattr(pipeline, "encode", counting_encode)

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "t"

        @handler
        def post(self, request, text):
            renders.append(text)
            span(text)

    clients = [ConsumerClient(Room) for _ in range(1000)]
    await asyncio.gather(*(client.connect() for client in clients))
    try:
        for number, text in enumerate(["hello", "again"], start=1):
            await clients[0].send("post", text)
            received = await asyncio.gather(*(client.communicator.receive_from(5) for client in clients))
            assert set(received) == {f'[["hypergen.morph","t","<span>{text}</span>"]]'}  # The same text everywhere.
            assert len(renders) == len(encodes) == number
    finally:
        await asyncio.gather(*(client.close() for client in clients))
