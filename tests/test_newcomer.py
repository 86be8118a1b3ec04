"""What a new user trips on: a handler without ``request``, a URL kwarg under another name."""

import re
import sys
from typing import Annotated

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from hypergen.context import context
from hypergen.imports import command
from pydantic import Field, ValidationError

from hypergen_consumers import (
    NO_PERM_REQUIRED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
    HypergenConsumer,
    agroup_send,
    autoconsumers,
    consumer,
    group_send,
    handler,
)
from hypergen_consumers.declaring.callback_checks import CallbackProblem, source_problems
from hypergen_consumers.routing import group_owners
from hypergen_consumers.testing import ConsumerClient
from tests.support import memory_or_redis

THIS_MODULE = sys.modules[__name__]


def raises_config(message):
    return pytest.raises(ImproperlyConfigured, match=re.escape(message))


# --- a handler whose second parameter is not request ----------------------------------


def test_a_handler_without_request_is_refused_naming_class_and_handler():
    with raises_config(
        "Poker.vote(self, slug: str, value: int): its second parameter must be named 'request' (it receives "
        "the request), not 'slug'. Write def vote(self, request, ...)."
    ):

        class Poker(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            path = "poker/<slug:slug>/"

            @handler
            def vote(self, slug: str, value: int): ...


def test_a_consumer_function_without_request_is_refused():
    with raises_config("shout(consumer, text): its second parameter must be named 'request'"):

        @consumer(perm=NO_PERM_REQUIRED)
        def shout(consumer, text): ...


def test_a_hook_without_request_is_refused():
    with raises_config("Poker.on_connect(self, slug): its second parameter must be named 'request'"):

        class Poker(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            path = "poker/<slug:slug>/"

            def on_connect(self, slug): ...

            @handler
            def vote(self, request, value: int): ...


# --- a URL kwarg under another name -------------------------------------------------------


def define_poker():
    class Poker(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "poker/<slug:room_name>/"

        @handler
        def vote(self, request, room: str, value: int): ...  # room: meant to be room_name.

        @handler
        def reveal(self, request, hand: str): ...  # Nothing close to room_name.

    autoconsumers(THIS_MODULE, namespace="newcomer")
    return Poker


HINT = (
    "Poker.path 'poker/<slug:room_name>/' has URL kwarg(s) ['room_name'] that vote() does not take; a URL "
    "kwarg fills only the parameter of the same name: did you mean 'room_name' for 'room'?"
)


@override_settings(DEBUG=True)
def test_the_callback_check_names_the_url_kwargs_and_guesses_the_misnamed_parameter():
    poker = define_poker()
    with pytest.raises(CallbackProblem) as raised, context(request=RequestFactory().get("/")):
        poker.callback("vote", 5, room_name="vip")
    assert str(raised.value) == (
        "Poker.vote takes 2 argument(s) from the client ['room', 'value']; this callback sends 1. " + HINT
    )


@override_settings(DEBUG=True)
def test_without_a_close_name_the_callback_check_still_names_the_url_kwargs():
    poker = define_poker()
    with pytest.raises(CallbackProblem) as raised, context(request=RequestFactory().get("/")):
        poker.callback("reveal", room_name="vip")
    assert str(raised.value).endswith(
        "Poker.path 'poker/<slug:room_name>/' has URL kwarg(s) ['room_name'] that reveal() does not take; a URL "
        "kwarg fills only the parameter of the same name: rename a parameter to it if its value should come "
        "from the URL."
    )


POKER_SOURCE = """
from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen.imports import callback


class Poker(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "poker/<slug:room_name>/"

    @handler
    def vote(self, request, room: str, value: int): ...


def page():
    callback(Poker.reverse(room_name="vip"), "vote", 5)
"""


def test_manage_py_check_e002_names_the_url_kwargs(tmp_path, monkeypatch):
    (tmp_path / "newcomer_poker.py").write_text(POKER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import newcomer_poker

        [(line, cls, problem)] = source_problems(newcomer_poker)
        assert (line, cls) == (15, newcomer_poker.Poker)
        assert problem.endswith(HINT)
    finally:
        sys.modules.pop("newcomer_poker", None)


async def test_the_validation_error_names_the_url_kwargs():
    poker = define_poker()
    async with ConsumerClient(poker, room_name="vip") as client:
        await client.send("vote", 5)
        error = await client.expect_error(VALIDATION_ERROR)
        assert error["message"] == "Invalid arguments for Poker.vote. " + HINT
        assert [entry["loc"] for entry in error["errors"]] == [["room"], ["value"]]
        # A wrong type is not a missing argument: no hint, the message stays short.
        await client.send("vote", "vip", "five")
        error = await client.expect_error(VALIDATION_ERROR)
        assert error["message"] == "Invalid arguments for Poker.vote."


# --- checked backend pushes ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def layer(request):
    yield from memory_or_redis(request)


def define_room(calls):
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room_name>/"

        @handler
        def send_message(self, request, room_name: str, text: Annotated[str, Field(max_length=10)]):
            calls.append((room_name, text))
            command("said", room_name, text)

        @handler
        def reveal(self, request): ...

    return ChatRoom


async def test_the_class_bound_push_reaches_the_group_its_kwargs_pick(layer):
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, room_name="vip") as vip, ConsumerClient(room, room_name="lobby") as lobby:
        await room.agroup_send("send_message", "hi", room_name="vip")
        assert await vip.receive() == [["said", "vip", "hi"]]
        await sync_to_async(room.group_send)("send_message", "yo", room_name="lobby")  # The sync form, from a thread.
        assert await lobby.receive() == [["said", "lobby", "yo"]]
        await vip.expect_nothing()
    assert calls == [("vip", "hi"), ("lobby", "yo")]


async def test_an_unknown_handler_raises_in_the_caller_and_nothing_is_sent(layer):
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, room_name="vip") as vip:
        message = (
            "ChatRoom.agroup_send: ChatRoom has no handler 'sned_message'; its handlers are ['reveal', "
            "'send_message']. The first argument names the handler: ChatRoom.agroup_send('reveal', ...)."
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            await room.agroup_send("sned_message", "hi", room_name="vip")
        with pytest.raises(ValueError, match=re.escape("ChatRoom.group_send: ChatRoom has no handler 'sned_message'")):
            await sync_to_async(room.group_send)("sned_message", "hi", room_name="vip")
        await vip.expect_nothing()  # Not even an unknown_handler error on the pages.
    assert calls == []


async def test_bad_args_raise_pydantics_error_in_the_caller_and_nothing_is_sent(layer):
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, room_name="vip") as vip:
        with pytest.raises(ValidationError) as too_long:
            await room.agroup_send("send_message", "x" * 11, room_name="vip")
        assert [(error["type"], error["loc"]) for error in too_long.value.errors()] == [("string_too_long", ("text",))]
        with pytest.raises(ValidationError) as too_many:
            await room.agroup_send("send_message", "hi", "there", room_name="vip")
        assert [(error["type"], error["loc"]) for error in too_many.value.errors()] == [
            ("unexpected_positional_argument", (1,))
        ]
        with pytest.raises(ValidationError) as missing:
            await room.agroup_send("send_message", room_name="vip")
        assert [(error["type"], error["loc"]) for error in missing.value.errors()] == [("missing", ("text",))]
        await vip.expect_nothing()
    assert calls == []


async def test_a_consumer_function_is_its_own_handler_in_a_checked_push(layer):
    heard = []

    @consumer(perm=NO_PERM_REQUIRED, path="<slug:chatgroup_name>/")
    def message_chatgroup(consumer, request, chatgroup_name, message: str):
        heard.append(message)
        command("heard", message)

    async with ConsumerClient(message_chatgroup, chatgroup_name="VIP") as vip:
        await message_chatgroup.agroup_send("YO!", chatgroup_name="VIP")
        assert await vip.receive() == [["heard", "YO!"]]
        with pytest.raises(ValidationError):
            await message_chatgroup.agroup_send(42, chatgroup_name="VIP")
        # The module-level form takes the args directly too: no handler name to check.
        await agroup_send(message_chatgroup.group_name(chatgroup_name="VIP"), "send_message")
        assert await vip.receive() == [["heard", "send_message"]]
    assert heard == ["YO!", "send_message"]


async def test_the_module_level_push_checks_the_name_when_the_group_has_one_known_class(layer):
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, room_name="vip") as vip:
        group = room.group_name(room_name="vip")
        message = (
            "group_send: ChatRoom has no handler 'revael'; its handlers are ['reveal', 'send_message']. The "
            "argument after the group names the handler: group_send(group, 'reveal', ...)."
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            await agroup_send(group, "revael")
        with pytest.raises(ValueError, match=re.escape("ChatRoom has no handler 'revael'")):
            await sync_to_async(group_send)(group, "revael")
        await vip.expect_nothing()
        await agroup_send(group, "send_message", "ok")  # A known name goes through as before.
        assert await vip.receive() == [["said", "vip", "ok"]]


async def test_a_group_two_classes_share_is_left_to_each_connection():
    def team_rule(consumer):
        return "team-red"

    class Chat(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        group_name = team_rule

        @handler
        def say(self, request): ...

    class Board(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        group_name = team_rule

        @handler
        def pin(self, request):
            command("pinned")

    async with ConsumerClient(Chat) as chat, ConsumerClient(Board) as board:
        await agroup_send("team-red", "pin")  # Either class's name may be meant: not refused.
        assert await board.receive() == [["pinned"]]
        await chat.expect_error(UNKNOWN_HANDLER)


def test_the_remembered_groups_are_bounded(monkeypatch):
    room = define_room([])
    monkeypatch.setattr(group_owners, "MAX_REMEMBERED_GROUPS", 3)
    for group in ["g-a", "g-b", "g-c", "g-d"]:
        group_owners.remember(group, room)
    assert list(group_owners._owners) == ["g-b", "g-c", "g-d"]  # The least recently named went first.
    assert group_owners.owner_of("g-a") is None  # Forgotten: not checked, never refused.


# --- ConsumerClient after a receive timeout --------------------------------------------------


async def test_a_receive_timeout_raises_timeout_error_and_leaving_async_with_keeps_it():
    room = define_room([])
    with pytest.raises(TimeoutError, match=re.escape("ChatRoom at /ws/test/room/vip/ sent nothing within 0.05 s")):
        async with ConsumerClient(room, room_name="vip") as client:
            await client.receive(timeout=0.05)  # Nothing was sent: the test's own mistake.
    assert not client.communicator.future.cancelled()  # The consumer was closed, not cancelled.


async def test_after_a_receive_timeout_the_client_stays_usable():
    calls = []
    room = define_room(calls)
    async with ConsumerClient(room, room_name="vip") as client, ConsumerClient(room, room_name="vip") as other:
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.05)
        assert await client.call("send_message", "still") == [["said", "vip", "still"]]
        assert await other.receive() == [["said", "vip", "still"]]  # The group did not lose it either.
    assert calls == [("vip", "still")]


async def test_the_fixture_closes_a_client_that_timed_out(consumer_client):
    room = define_room([])
    client = await consumer_client(room, room_name="vip")
    with pytest.raises(TimeoutError):
        await client.expect_error(VALIDATION_ERROR, timeout=0.05)
    # The fixture's clean-up closes it after the test; a CancelledError there would fail the test.


async def test_a_consumer_that_crashed_raises_its_own_error_not_a_timeout():
    class Crashing(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def ping(self, request): ...

        async def receive(self, text_data=None, bytes_data=None, **kwargs):
            raise RuntimeError("the consumer's own bug")

    client = ConsumerClient(Crashing)
    await client.connect()
    await client.send("ping")
    with pytest.raises(RuntimeError, match="the consumer's own bug"):
        await client.receive(timeout=5)  # Its own error, not a TimeoutError.


# --- a checked push from another process (a Celery task), over Redis, to daphne --------------

TASK = (
    "import django; django.setup()\n"
    "from pydantic import ValidationError\n"
    "from hypergen_consumers import group_send\n"
    "from tests.consumers import Echo\n"
    "for push in [lambda: Echo.group_send('shuot', 'x', room='vip'),\n"
    "             lambda: Echo.group_send('shout', room='vip'),\n"
    "             lambda: group_send(Echo.group_name(room='vip'), 'shuot', 'x')]:\n"
    "    try:\n"
    "        push()\n"
    "    except (ValueError, ValidationError) as refused:\n"
    "        print(type(refused).__name__, str(refused).splitlines()[0])\n"
    "Echo.group_send('shout', 'checked', room='vip')\n"
)


@pytest.mark.server
async def test_a_task_process_is_refused_its_typos_and_its_good_push_reaches_daphne():
    import asyncio
    import json

    from websockets.asyncio.client import connect

    from tests.servers import daphne, redis_server, run_script

    with redis_server() as redis_port:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}"}
        with daphne("tests.asgi:application", env=env) as (port, _):
            url = f"ws://127.0.0.1:{port}/ws/tests/echo/vip/"
            async with connect(url, origin=f"http://127.0.0.1:{port}") as page:
                result = await asyncio.to_thread(run_script, TASK, env)
                assert result.returncode == 0, result.stderr
                assert result.stdout.splitlines() == [
                    "ValueError Echo.group_send: Echo has no handler 'shuot'; its handlers are ['shout']. The first "
                    "argument names the handler: Echo.group_send('shout', ...).",
                    "ValidationError 1 validation error for Echo_shout_arguments",
                    "ValueError group_send: Echo has no handler 'shuot'; its handlers are ['shout']. The argument "
                    "after the group names the handler: group_send(group, 'shout', ...).",
                ]
                # Only the good push arrived: nothing of the refused ones reached the page first.
                assert json.loads(await asyncio.wait_for(page.recv(), 10)) == [
                    ["hypergen.morph", "echo", "<span>vip: CHECKED</span>"],
                    ["hypergen.append", "log", "checked"],
                ]
