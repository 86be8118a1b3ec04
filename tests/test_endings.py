"""Whatever ends a connection (a disconnect, an exception, a cancellation), it leaves its groups
and the recovery registry: a dead channel must never stay a member."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.delivery import local_groups
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.testing import ConsumerClient
from tests.support import wait_for


def define_member(connections, release):
    class Member(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "member/<slug:room>/"
        groups = ["member-extra"]

        async def on_connect(self, request, room):
            connections.append(self)

        @handler
        async def hang(self, request, room):
            release.started.set()
            await release.wait()
            command("released")

    return Member


def member_channels(group):
    return set(get_channel_layer().groups.get(group, {}))


def is_member(connection, group):
    """In ``group`` through the process's one member of it (local_groups), which is in the layer's group."""
    return (
        connection in local_groups.local_members(connection.channel_layer, group) and len(member_channels(group)) == 1
    )


async def connected_member(Member, connections):
    client = ConsumerClient(Member, room="r1")
    await client.connect()
    await wait_for(lambda: connections)  # on_connect runs right after the accept.
    connection = connections[-1]
    group = Member.group_name(room="r1")
    assert is_member(connection, group) and is_member(connection, "member-extra")
    assert connection in set(backend_for(connection.channel_layer).health.members)
    return client, connection, group


def assert_left_everything(connection, group):
    for left in (group, "member-extra"):  # The last local member's leaving takes the process out too.
        assert connection not in local_groups.local_members(connection.channel_layer, left)
        assert member_channels(left) == set()
    assert connection not in set(backend_for(connection.channel_layer).health.members)


async def test_a_disconnect_leaves_every_group_and_the_registry():
    connections, release = [], asyncio.Event()
    Member = define_member(connections, release)
    client, connection, group = await connected_member(Member, connections)
    await client.close()
    assert_left_everything(connection, group)


async def test_a_crash_leaves_every_group_and_the_registry():
    connections, release = [], asyncio.Event()
    Member = define_member(connections, release)
    client, connection, group = await connected_member(Member, connections)
    # A channel-layer event the consumer has no method for makes Channels' dispatch raise.
    await get_channel_layer().send(connection.channel_name, {"type": "no.such.event"})
    with pytest.raises(ValueError, match="No handler for message type"):
        await client.communicator.wait(timeout=2)
    assert_left_everything(connection, group)


async def test_a_cancelled_connection_leaves_every_group_and_the_registry():
    """What daphne does to an application still running a handler after the socket closed."""
    connections, release = [], asyncio.Event()
    Member = define_member(connections, release)
    client, connection, group = await connected_member(Member, connections)
    release.started = asyncio.Event()
    await client.send("hang")
    await asyncio.wait_for(release.started.wait(), 2)
    client.communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client.communicator.future
    assert_left_everything(connection, group)
    assert not release.is_set()  # It was cancelled mid-handler, not allowed to finish.
