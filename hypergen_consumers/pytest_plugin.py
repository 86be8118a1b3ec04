"""pytest plugin (entry point ``hypergen_consumers``): the ``consumer_client`` fixture factory.

    async def test_chat(consumer_client):
        client = await consumer_client(ChatRoom, room_name="vip")
        await client.call("send_message", "hi")
        assert client.appended("messages") == ["<li>hi</li>"]

Clients are connected on creation and closed when the test ends.
"""

from __future__ import annotations

from typing import Any

import pytest

from .testing import ConsumerClient


@pytest.fixture
async def consumer_client():  # type: ignore[no-untyped-def]
    clients: list[ConsumerClient] = []

    async def connect(consumer_class: Any, *args: Any, **kwargs: Any) -> ConsumerClient:
        client = ConsumerClient(consumer_class, *args, **kwargs)
        await client.connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()
