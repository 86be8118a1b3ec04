"""user_command / auser_command: every socket of one user, and no one else's."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser, User
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, auser_command, handler, user_command
from hypergen_consumers.errors import ReservedGroupName
from hypergen_consumers.layers.users import user_group_name
from hypergen_consumers.testing import ConnectionRefused, ConsumerClient


def define_consumers():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:name>/"

        @handler
        async def ping(self, request, name: str):
            command("pong")

    class Inbox(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        # Hostile: a custom rule that names the user group of whoever the URL says.
        path = "inbox/<str:target>/"
        group_name = lambda consumer: consumer.url_kwargs["target"]  # noqa: E731

        @handler
        async def ping(self, request, target: str):
            command("pong")

    return Room, Inbox


async def make_user(username):
    return await sync_to_async(User.objects.create_user)(username, password="pw")


async def test_user_command_reaches_every_tab_and_consumer_of_that_user_and_no_one_else():
    room, inbox = define_consumers()
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ConsumerClient(room, name="a", user=alice) as tab1,
        ConsumerClient(room, name="b", user=alice) as tab2,
        ConsumerClient(inbox, target="me", user=alice) as tab3,
        ConsumerClient(room, name="a", user=bob) as bobs,
        ConsumerClient(room, name="a") as anonymous,
    ):
        await auser_command(alice, [["notice", "for alice"]])
        for tab in (tab1, tab2, tab3):
            assert await tab.receive() == [["notice", "for alice"]]
        await sync_to_async(user_command)(bob.pk, [["notice", "for bob, by pk"]])
        assert await bobs.receive() == [["notice", "for bob, by pk"]]
        for other in (tab1, tab2, tab3, anonymous):
            await other.expect_nothing()
        await bobs.expect_nothing()
        await tab2.close()
        await auser_command(alice, [["notice", "again"]])
        assert await tab1.receive() == [["notice", "again"]]
        assert await tab3.receive() == [["notice", "again"]]


async def test_a_custom_group_rule_cannot_join_another_users_group():
    room, inbox = define_consumers()
    alice = await make_user("alice")
    target = user_group_name(alice)
    assert target == f"hc-user-{alice.pk}"
    with pytest.raises(ReservedGroupName):
        inbox.group_name(target=target)
    with pytest.raises(ConnectionRefused) as refused:
        await ConsumerClient(inbox, target=target).connect()
    assert refused.value.code == 4403
    async with ConsumerClient(room, name="a", user=alice) as real:
        await auser_command(alice, [["secret"]])
        assert await real.receive() == [["secret"]]


async def test_a_user_with_no_open_socket_receives_nothing_and_nothing_breaks():
    await make_user("alice")
    carol = await make_user("carol")
    await auser_command(carol, [["notice", "nobody home"]])


@pytest.mark.parametrize("bad", [AnonymousUser(), None, True], ids=["anonymous", "none", "bool"])
def test_user_command_refuses_what_is_not_a_user(bad):
    with pytest.raises(ValueError, match=re.escape("user_command() needs a saved, authenticated user")):
        user_command(bad, [["x"]])


def test_user_command_checks_the_commands():
    with pytest.raises(ValueError, match=re.escape("user_command() takes a list of commands")):
        user_command(1, "alert")


def test_user_group_names_are_valid_for_any_pk():
    from hypergen_consumers.routing.groups import is_valid_group_name

    for pk in (1, "a" * 200, "ünïcode pk", "a.b", "x-y"):
        name = user_group_name(pk)
        assert is_valid_group_name(name) and name.startswith("hc-user-")
    assert user_group_name("a.b") != user_group_name("a-b")
