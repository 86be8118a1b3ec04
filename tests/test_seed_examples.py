"""The documentation's examples, each connected over WebsocketCommunicator.

Each test sends the exact frame hypergen's callback() sends and asserts the exact commands
received by the sender, by the other members of the group, and that non-members get nothing.
"""

import json
import sys
from typing import Annotated

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from hypergen.imports import command, hypergen, li, span
from pydantic import Field

from hypergen_consumers import (
    NO_PERM_REQUIRED,
    PERMISSION_DENIED,
    VALIDATION_ERROR,
    HypergenConsumer,
    autoconsumers,
    consumer,
    consumer_command,
    group_send,
    handler,
)
from hypergen_consumers.testing import ConsumerClient

THIS_MODULE = sys.modules[__name__]


def mount():
    return autoconsumers(THIS_MODULE, namespace="docs")


async def test_simple_consumer_with_a_path_and_a_target_id():
    counter = {"n": 0}

    def increment_counter():
        counter["n"] += 1
        return counter["n"]

    @consumer(perm=NO_PERM_REQUIRED, path="<slug:chatgroup_name>/", target_id="counter")
    def message_chatgroup(consumer, request, chatgroup_name, message):
        span("Number of messages: ", increment_counter())
        command("hypergen.append", "mychat", message)

    mount()
    async with (
        ConsumerClient(message_chatgroup, chatgroup_name="friends") as sender,
        ConsumerClient(message_chatgroup, chatgroup_name="friends") as friend,
        ConsumerClient(message_chatgroup, chatgroup_name="enemies") as outsider,
    ):
        await sender.communicator.send_to(text_data=json.dumps({"args": ["Hello"], "meta": {}}))
        expected = [
            ["hypergen.morph", "counter", "<span>Number of messages: 1</span>"],
            ["hypergen.append", "mychat", "Hello"],
        ]
        assert await sender.receive() == expected
        assert await friend.receive() == expected
        await outsider.expect_nothing()
    assert counter["n"] == 1, "rendered once per message, not once per receiver"


async def test_the_seeds_own_group_send_line_runs_the_function_on_each_connection():
    counter = {"n": 0}

    def increment_counter():
        counter["n"] += 1
        return counter["n"]

    @consumer(perm=NO_PERM_REQUIRED, path="<slug:chatgroup_name>/", target_id="counter")
    def message_chatgroup(consumer, request, chatgroup_name, message):
        span("Number of messages: ", increment_counter())
        command("hypergen.append", "mychat", message)

    mount()
    async with (
        ConsumerClient(message_chatgroup, chatgroup_name="VIP") as first,
        ConsumerClient(message_chatgroup, chatgroup_name="VIP") as second,
        ConsumerClient(message_chatgroup, chatgroup_name="other") as outsider,
    ):
        await sync_to_async(group_send)(message_chatgroup.group_name(chatgroup_name="VIP"), "YO!")  # The seed's line.
        received = [await first.receive(), await second.receive()]
        await outsider.expect_nothing()
    # Each connection ran the function for itself (so the count went up twice), output to itself alone.
    assert sorted(command[2] for commands in received for command in commands if command[0] == "hypergen.morph") == [
        "<span>Number of messages: 1</span>",
        "<span>Number of messages: 2</span>",
    ]
    assert [[c for c in commands if c[0] == "hypergen.append"] for commands in received] == [
        [["hypergen.append", "mychat", "YO!"]]
    ] * 2


async def test_custom_group_name_puts_different_urls_in_one_group():
    @consumer(perm=NO_PERM_REQUIRED, path="room/<slug:room>/", target_id="t", group_name=lambda consumer: "vip_group")
    def send_message(consumer, request, room, message):
        span(room, ": ", message)

    mount()
    assert send_message.group_name(room="a") == "vip_group"
    assert send_message.group_name(room="b") == "vip_group"
    async with ConsumerClient(send_message, room="a") as a, ConsumerClient(send_message, room="b") as b:
        await a.send("hi")
        assert await a.receive() == [["hypergen.morph", "t", "<span>a: hi</span>"]]
        assert await b.receive() == [["hypergen.morph", "t", "<span>a: hi</span>"]]


async def test_app_state_lives_on_the_consumer_instance():
    def my_template(state):
        span(" ".join(str(x) for x in state))

    @consumer(perm=NO_PERM_REQUIRED, target_id="content", broadcast=False)
    def my_consumer(consumer, request):
        if not hasattr(consumer, "my_app_state"):
            consumer.my_app_state = [1, 2, 3]
        else:
            consumer.my_app_state.append(len(consumer.my_app_state) + 1)
        my_template(consumer.my_app_state)

    mount()
    async with ConsumerClient(my_consumer) as first, ConsumerClient(my_consumer) as second:
        assert await first.call() == [["hypergen.morph", "content", "<span>1 2 3</span>"]]
        assert await first.call() == [["hypergen.morph", "content", "<span>1 2 3 4</span>"]]
        assert await second.call() == [["hypergen.morph", "content", "<span>1 2 3</span>"]]
        await first.expect_nothing()


async def test_backend_group_send_runs_the_handler_on_each_connection():
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room_name>/"
        target_id = "counter"

        @handler
        def send_message(self, request, room_name: str, text: str):
            self.count = getattr(self, "count", 0) + 1
            span("Messages seen here in ", room_name, ": ", self.count)
            command("hypergen.append", "messages", hypergen(lambda: li(text)))

    mount()
    async with (
        ConsumerClient(ChatRoom, room_name="vip") as alice,
        ConsumerClient(ChatRoom, room_name="vip") as bob,
        ConsumerClient(ChatRoom, room_name="lobby") as carol,
    ):
        await alice.send("send_message", "first")  # Alice's count is now 1; Bob's stays 0 (broadcast output only).
        await alice.receive()
        await bob.receive()

        # From sync code, as a view, a management command or a Celery task would.
        await sync_to_async(group_send)(ChatRoom.group_name(room_name="vip"), "send_message", "YO!")
        assert await alice.receive() == [
            ["hypergen.morph", "counter", "<span>Messages seen here in vip: 2</span>"],
            ["hypergen.append", "messages", "<li>YO!</li>"],
        ]
        assert await bob.receive() == [
            ["hypergen.morph", "counter", "<span>Messages seen here in vip: 1</span>"],
            ["hypergen.append", "messages", "<li>YO!</li>"],
        ]
        await alice.expect_nothing()  # Each connection got its own output only, once.
        await bob.expect_nothing()

        await sync_to_async(consumer_command)(ChatRoom.group_name(room_name="vip"), [["alert", 42]])
        assert await alice.receive() == [["alert", 42]]
        assert await bob.receive() == [["alert", 42]]
        await carol.expect_nothing()


@pytest.mark.django_db(transaction=True)
async def test_class_api_with_several_typed_handlers_and_permissions():
    class ChatRoom(HypergenConsumer):
        perm = "auth.view_user"
        path = "room/<slug:room_name>/"
        target_id = "counter"

        @handler
        def send_message(self, request, room_name: str, text: Annotated[str, Field(max_length=10)]):
            span("Last message in ", room_name, ": ", text)
            command("hypergen.append", "messages", hypergen(lambda: li(text)))

        @handler(perm="auth.change_user")
        def delete_message(self, request, message_id: int):
            command("hypergen.remove", f"message-{message_id}")

    mount()

    @sync_to_async
    def make_users():
        chatter = User.objects.create_user("chatter")
        chatter.user_permissions.add(Permission.objects.get(codename="view_user"))
        moderator = User.objects.create_user("moderator")
        moderator.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
        return User.objects.get(pk=chatter.pk), User.objects.get(pk=moderator.pk)

    chatter, moderator = await make_users()
    async with (
        ConsumerClient(ChatRoom, room_name="vip", user=chatter) as chat,
        ConsumerClient(ChatRoom, room_name="vip", user=moderator) as mod,
    ):
        # Several handlers: the first callback argument names the handler.
        await chat.communicator.send_to(text_data=json.dumps({"args": ["send_message", "hello"], "meta": {}}))
        expected = [
            ["hypergen.morph", "counter", "<span>Last message in vip: hello</span>"],
            ["hypergen.append", "messages", "<li>hello</li>"],
        ]
        assert await chat.receive() == expected
        assert await mod.receive() == expected

        error = await chat.call("send_message", "far too long text")
        assert error == [
            [
                "hypergen.websocket.error",
                {
                    "code": VALIDATION_ERROR,
                    "message": "Invalid arguments for ChatRoom.send_message.",
                    "errors": [
                        {"type": "string_too_long", "loc": ["text"], "msg": "String should have at most 10 characters"}
                    ],
                },
            ]
        ]
        await mod.expect_nothing()

        await chat.send("delete_message", 7)
        payload = await chat.expect_error(PERMISSION_DENIED)
        assert payload["message"] == "ChatRoom.delete_message requires permission 'auth.change_user'."
        await mod.expect_nothing()

        await mod.send("delete_message", "7")  # Lax mode: "7" is coerced to 7.
        assert await mod.receive() == [["hypergen.remove", "message-7"]]
        assert await chat.receive() == [["hypergen.remove", "message-7"]]
