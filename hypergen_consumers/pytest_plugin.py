"""pytest plugin (entry point ``hypergen_consumers``): the ``consumer_client`` fixture factory.

    async def test_chat(consumer_client):
        client = await consumer_client(ChatRoom, room_name="vip")
        await client.call("send_message", "hi")
        assert client.appended("messages") == ["<li>hi</li>"]

Clients are connected on creation and closed when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hypergen_consumers.testing import ConsumerClients


@pytest.fixture
async def consumer_client() -> AsyncIterator[ConsumerClients]:
    clients = ConsumerClients()
    yield clients
    await clients.close()
