"""The testing helpers users get: ConsumerClient and the consumer_client pytest fixture."""

from typing import Annotated

import pytest
from hypergen.imports import command, hypergen, li, span
from pydantic import Field

from hypergen_consumers import NO_PERM_REQUIRED, VALIDATION_ERROR, HypergenConsumer, handler


def define_room():
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room_name>/"
        target_id = "counter"

        @handler
        def send_message(self, request, room_name: str, text: Annotated[str, Field(max_length=100)]):
            self.count = getattr(self, "count", 0) + 1
            span("Messages in ", room_name, ": ", self.count)
            command("hypergen.append", "messages", hypergen(lambda: li(text)))

        @handler(broadcast=False)
        def clear(self, request, room_name: str):
            self.count = 0
            span("Messages in ", room_name, ": 0")

    return ChatRoom


async def test_the_fixture_connects_clients_and_the_helpers_read_the_last_frame(consumer_client):
    room = define_room()
    client = await consumer_client(room, room_name="vip")
    other = await consumer_client(room, room_name="vip")
    await client.call("send_message", "hi")
    assert client.morphed("counter") == "<span>Messages in vip: 1</span>"
    assert client.appended("messages") == ["<li>hi</li>"]
    assert client.morphed("missing") is None
    await other.receive()
    assert other.appended("messages") == ["<li>hi</li>"]
    await client.send("send_message", "x" * 101)
    payload = await client.expect_error(VALIDATION_ERROR)
    assert payload["errors"][0]["loc"] == ["text"]
    await other.expect_nothing()


async def test_expect_helpers_fail_loudly(consumer_client):
    client = await consumer_client(define_room(), room_name="vip")
    await client.send("send_message", "hi")
    with pytest.raises(
        AssertionError, match="expected one hypergen.websocket.error command with code 'validation_error'"
    ):
        await client.expect_error(VALIDATION_ERROR)
    await client.send("send_message", "again")
    with pytest.raises(AssertionError, match="expected nothing, received"):
        await client.expect_nothing()
