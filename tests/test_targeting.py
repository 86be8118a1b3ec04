"""Who gets what: broadcast="others", send_commands/asend_commands, extra groups, sync event methods."""

import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from hypergen.imports import COMMANDS, command, hypergen, span

from hypergen_consumers import (
    HANDLER_ERROR,
    NO_PERM_REQUIRED,
    UNKNOWN_HANDLER,
    HypergenConsumer,
    aconsumer_command,
    handler,
)
from hypergen_consumers.testing import ConsumerClient


async def test_broadcast_others_sends_to_the_group_but_the_sender():
    class Typing(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "typing/<slug:room>/"
        broadcast = "others"

        @handler
        def typing(self, request, room, who: str):
            command("typing", who)

        @handler(broadcast=True)
        def post(self, request, room, text: str):
            command("post", text)

    async with (
        ConsumerClient(Typing, room="a") as sender,
        ConsumerClient(Typing, room="a") as other,
        ConsumerClient(Typing, room="b") as outsider,
    ):
        await sender.send("typing", "ann")
        assert await other.receive() == [["typing", "ann"]]
        await sender.expect_nothing()
        await outsider.expect_nothing()
        assert await sender.call("post", "hi") == [["post", "hi"]]  # The handler's own choice wins.
        assert await other.receive() == [["post", "hi"]]


async def test_handler_broadcast_others_overrides_the_class():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler(broadcast="others")
        def poke(self, request):
            command("poked")

    async with ConsumerClient(Room) as sender, ConsumerClient(Room) as other:
        await sender.send("poke")
        assert await other.receive() == [["poked"]]
        await sender.expect_nothing()


@pytest.mark.parametrize("value", ["Others", "all", 1, None], ids=repr)
def test_broadcast_accepts_true_false_or_others_only(value):
    with pytest.raises(
        ImproperlyConfigured,
        match=re.escape(
            f"Bad.broadcast: broadcast must be True (the group), False (the sender only) or 'others' (the group but the sender), not {value!r}."
        ),
    ):

        class Bad(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            broadcast = value

            @handler
            def post(self, request): ...

    with pytest.raises(
        ImproperlyConfigured, match=re.escape("Bad.post: @handler(broadcast=...): broadcast must be True")
    ):

        class Bad(HypergenConsumer):  # noqa: F811
            perm = NO_PERM_REQUIRED

            @handler(broadcast=value)
            def post(self, request): ...


async def test_send_commands_reach_the_sender_alone_before_the_group_output():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def post(self, request, text: str):
            self.send_commands([["private", f"only you see {text}"]])
            command("public", text)

        @handler
        async def apost(self, request, text: str):
            await self.asend_commands([["private", text]])
            command("public", text)

    async with ConsumerClient(Room) as sender, ConsumerClient(Room) as other:
        await sender.send("post", "x")
        assert await sender.receive() == [["private", "only you see x"]]
        assert await sender.receive() == [["public", "x"]]
        assert await other.receive() == [["public", "x"]]
        await other.expect_nothing()
        await sender.send("apost", "y")
        assert await sender.receive() == [["private", "y"]]
        assert await sender.receive() == [["public", "y"]]
        assert await other.receive() == [["public", "y"]]
        await other.expect_nothing()


async def test_send_commands_refuses_bad_lists_and_the_wrong_colour_of_code():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def not_a_list(self, request):
            self.send_commands(["alert", 42])

        @handler
        async def sync_call_in_async(self, request):
            self.send_commands([["alert", 42]])

    async with ConsumerClient(Room) as client:
        await client.send("not_a_list")
        await client.expect_error(HANDLER_ERROR)
        await client.send("sync_call_in_async")
        await client.expect_error(HANDLER_ERROR)
        # A client cannot call them: they are not handlers.
        await client.send("send_commands", [["alert", 1]])
        await client.expect_error(UNKNOWN_HANDLER)
        await client.expect_nothing()


def test_send_commands_from_async_code_says_to_use_asend_commands():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def post(self, request): ...

    async def call():
        Room().send_commands([["alert", 1]])

    import asyncio

    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "Room.send_commands() was called from async code; use 'await self.asend_commands(commands)' there."
        ),
    ):
        asyncio.run(call())


async def test_sync_channel_layer_event_methods_run_in_a_thread_and_can_send():
    """Upstream hypergen's style: def chat__message_from_backend(self, event)."""

    class Chat(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "chat/"

        @handler
        def post(self, request, text: str):
            command("post", text)

        def chat__message_from_backend(self, event):
            users = User.objects.count()  # The ORM works: this runs in a worker thread.
            rendered = hypergen(
                lambda: span("from ", event["who"]), settings=dict(action=True, returns=COMMANDS, target_id="t")
            )
            self.send_commands([*event["commands"], ["users", users], *rendered])

    await sync_to_async(User.objects.create_user)("ann")
    async with ConsumerClient(Chat) as first, ConsumerClient(Chat) as second:
        group = Chat.group_name()
        await get_channel_layer().group_send(
            group, {"type": "chat__message_from_backend", "commands": [["alert", "hi"]], "who": "ann"}
        )
        for client in (first, second):
            commands = await client.receive()
            assert commands[:2] == [["alert", "hi"], ["users", 1]]
            assert client.morphed("t", commands) == "<span>from ann</span>"
        assert await first.call("post", "still alive") == [["post", "still alive"]]


async def test_extra_groups_are_joined_and_left():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:name>/"
        groups = ["announcements"]

        @handler
        def post(self, request, name, text: str):
            command("post", text)

    async with ConsumerClient(Room, name="a") as a, ConsumerClient(Room, name="b") as b:
        await aconsumer_command("announcements", [["alert", "to every room"]])
        assert await a.receive() == [["alert", "to every room"]]
        assert await b.receive() == [["alert", "to every room"]]
        assert await a.call("post", "x") == [["post", "x"]]
        await b.expect_nothing()  # Handler output still goes to the consumer's own group only.
    assert "announcements" not in get_channel_layer().groups
