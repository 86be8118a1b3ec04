"""group_send / agroup_send and consumer_command / aconsumer_command."""

import logging
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypergen.imports import command

from hypergen_consumers import (
    NO_PERM_REQUIRED,
    PERMISSION_DENIED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
    HypergenConsumer,
    aconsumer_command,
    agroup_send,
    consumer_command,
    group_send,
    handler,
)
from hypergen_consumers.routing import group_owners
from hypergen_consumers.testing import ConsumerClient


def define_room(calls):
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:name>/"

        @handler
        async def post(self, request, n: int):
            calls.append(n)
            command("post", n)

        @handler(perm="auth.change_user")
        def moderate(self, request):
            calls.append(f"moderate by {request.user}")
            command("moderated")

    return Room


async def test_async_twins_from_async_code():
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, name="a") as a, ConsumerClient(room, name="b") as b:
        await agroup_send(room.group_name(name="a"), "post", "5")
        assert await a.receive() == [["post", 5]]
        await aconsumer_command(room.group_name(name="a"), [["alert", "hi"], ["console.log", 1]])
        assert await a.receive() == [["alert", "hi"], ["console.log", 1]]
        await b.expect_nothing()
    assert calls == [5]


async def test_group_send_checks_each_connection_like_a_client_message():
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, name="a") as a:
        group = room.group_name(name="a")
        await agroup_send(group, "post", "not a number")
        assert (await a.expect_error(VALIDATION_ERROR))["errors"][0]["loc"] == ["n"]
        group_owners.forget_all()  # As in a process that never named the group: it cannot check the name.
        await agroup_send(group, "nope")
        await a.expect_error(UNKNOWN_HANDLER)  # Each connection still does.
    assert calls == []


async def test_group_send_skips_connections_without_the_handlers_perm_silently(caplog):
    """A server-originated run is not the client's doing: no permission_denied to pages without the perm."""
    calls = []
    room = define_room(calls)
    admin = await sync_to_async(User.objects.create_superuser)("admin")
    async with ConsumerClient(room, name="a") as anonymous, ConsumerClient(room, name="a", user=admin) as moderator:
        with caplog.at_level(logging.DEBUG, logger="hypergen_consumers"):
            await agroup_send(room.group_name(name="a"), "moderate")
            assert await moderator.receive() == [["moderated"]]
            await anonymous.expect_nothing()
        assert calls == ["moderate by admin"]
        skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
        assert [r.levelno for r in skipped] == [logging.DEBUG]
        assert "Room.moderate" in skipped[0].getMessage() and "auth.change_user" in skipped[0].getMessage()
        # The same handler sent by the page itself still answers permission_denied.
        await anonymous.send("moderate")
        await anonymous.expect_error(PERMISSION_DENIED)
    assert calls == ["moderate by admin"]


async def test_group_send_to_an_empty_group_is_silent_like_channels():
    await agroup_send("nobody-here", "post", 1)


def test_group_send_refuses_what_is_not_a_group_name():
    with pytest.raises(ValueError, match=re.escape("Pass the value of YourConsumer.group_name(...).")):
        group_send("room vip", "post", 1)


@pytest.mark.parametrize(
    "commands", [["alert", 42], "alert", [[]], [[42]]], ids=["one-command", "string", "empty", "no-name"]
)
def test_consumer_command_refuses_what_is_not_a_command_list(commands):
    with pytest.raises(ValueError, match=re.escape('e.g. [["alert", 42]]')):
        consumer_command("room", commands)


@override_settings(CHANNEL_LAYERS={})
def test_without_a_channel_layer_the_error_says_how_to_configure_one():
    with pytest.raises(
        ImproperlyConfigured,
        match=re.escape(
            "consumer_command needs the channel layer 'default', and none is configured: set CHANNEL_LAYERS"
        ),
    ):
        consumer_command("room", [["alert", 1]])


@override_settings(CHANNEL_LAYERS={})
async def test_a_consumer_without_a_channel_layer_fails_loudly():
    room = define_room([])
    client = ConsumerClient(room, name="a")
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("Room needs the channel layer 'default', and none is configured")
    ):
        await client.communicator.connect()


async def test_sync_twins_work_from_sync_code_in_a_thread():
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, name="a") as a:
        await sync_to_async(group_send)(room.group_name(name="a"), "post", 1)
        assert await a.receive() == [["post", 1]]
        await sync_to_async(consumer_command)(room.group_name(name="a"), [["x"]])
        assert await a.receive() == [["x"]]
