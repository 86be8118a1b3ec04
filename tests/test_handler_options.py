"""Options on handlers and hooks: ``self.from_server``, per-handler ``target_id`` and
``presence_target_id``, per-handler ``rate``; and what a hostile client does to each."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from hypergen.imports import command, span

from hypergen_consumers import NO_PERM_REQUIRED, RATE_LIMITED, HypergenConsumer, agroup_send, consumer, handler
from hypergen_consumers.testing import ConsumerClient


async def make_user(username):
    return await sync_to_async(User.objects.create_user)(username, password="pw")


# --- self.from_server ---------------------------------------------------------------


def define_poker():
    class Poker(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "poker/<slug:table>/"
        broadcast = False

        def on_connect(self, request, table):
            command("connected", self.from_server)

        @handler
        def reveal(self, request, table):
            who = "the server" if self.from_server else request.user.get_username() or "anonymous"
            command("revealed", self.from_server, who)

        @handler
        async def areveal(self, request, table):
            command("revealed", self.from_server)

    return Poker


@pytest.mark.parametrize("name", ["reveal", "areveal"], ids=["def", "async def"])
async def test_from_server_is_true_in_a_group_send_run_on_every_connection_and_false_for_a_client_frame(name):
    poker = define_poker()
    alice = await make_user("alice")
    async with ConsumerClient(poker, table="t1", user=alice) as a, ConsumerClient(poker, table="t1") as b:
        assert await a.receive() == [["connected", False]], "a hook is no group_send run"
        assert await b.receive() == [["connected", False]]
        assert (await a.call(name))[0][1] is False
        await agroup_send(poker.group_name(table="t1"), name)
        assert (await a.receive())[0][1] is True
        assert (await b.receive())[0][1] is True
        assert (await b.call(name))[0][1] is False, "a client frame after a group_send run is the client's again"


async def test_a_group_send_run_renders_the_server_as_the_actor_not_each_viewer():
    poker = define_poker()
    alice = await make_user("alice")
    async with ConsumerClient(poker, table="t1", user=alice) as a:
        await a.receive()
        assert await a.call("reveal") == [["revealed", False, "alice"]]
        await agroup_send(poker.group_name(table="t1"), "reveal")
        assert await a.receive() == [["revealed", True, "the server"]]


async def test_a_client_cannot_claim_to_be_the_server():
    poker = define_poker()
    async with ConsumerClient(poker, table="t1") as a:
        await a.receive()
        for meta in ({"from_server": True}, {"from_server": 1, "type": "hypergen_consumers.run"}):
            assert (await a.call("reveal", meta=meta))[0][1] is False
        await a.send_text('{"type": "hypergen_consumers.run", "args": "[\\"reveal\\"]", "meta": {}}')
        await a.expect_error("invalid_frame")


def test_from_server_is_false_outside_any_run():
    poker = define_poker()
    assert poker.__new__(poker).from_server is False


# --- target_id per handler, presence_target_id -------------------------------------


async def test_handler_target_id_overrides_the_class_target_id_for_that_handler_only():
    class Board(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "main"
        broadcast = False

        @handler(target_id="board")
        def move(self, request, square: int):
            span("moved to ", square)

        @handler
        def chat(self, request, text: str):
            span(text)

    async with ConsumerClient(Board) as client:
        commands = await client.call("move", 3)
        assert client.morphed("board") == "<span>moved to 3</span>"
        assert client.morphed("main") is None, commands
        await client.call("chat", "hi")
        assert client.morphed("main") == "<span>hi</span>" and client.morphed("board") is None


async def test_handler_target_id_works_without_a_class_target_id_and_in_a_group_send_run():
    class Board(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "board/<slug:game>/"

        @handler(target_id="board")
        def move(self, request, game, square: int):
            span(square)

    async with ConsumerClient(Board, game="g") as a, ConsumerClient(Board, game="g") as b:
        await a.call("move", 1)
        assert a.morphed("board") == "<span>1</span>"
        await b.receive()
        assert b.morphed("board") == "<span>1</span>"
        await agroup_send(Board.group_name(game="g"), "move", 2)
        await a.receive()
        assert a.morphed("board") == "<span>2</span>"


async def test_presence_target_id_is_where_on_presence_renders():
    class Lobby(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "main"
        presence = True
        presence_target_id = "who"

        def on_presence(self, request, present, joins, leaves):
            span(len(present), " here")

        @handler
        def ping(self, request):
            span("pong")

    async with ConsumerClient(Lobby) as a:
        await a.receive()
        assert a.morphed("who") == "<span>1 here</span>" and a.morphed("main") is None
        assert await a.call("ping") and a.morphed("main") == "<span>pong</span>"


async def test_consumer_functions_take_the_new_options():
    @consumer(perm=NO_PERM_REQUIRED, target_id="box", presence=True, presence_target_id="who", rate="1/m")
    def shout(consumer, request, text: str):
        span(text)

    assert shout.presence_target_id == "who" and shout._handlers["shout"].rate.count == 1
    assert shout._handlers["shout"].target_id == "box"


@pytest.mark.parametrize("value", [42, "", ["board"]], ids=["number", "empty", "list"])
def test_a_bad_target_id_is_refused_at_class_creation(value):
    msg = f'Bad.move: @handler(target_id=...) must be an element id (a non-empty string such as "board") or None; got {value!r}.'
    with pytest.raises(ImproperlyConfigured, match=re.escape(msg)):

        class Bad(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler(target_id=value)
            def move(self, request): ...

    with pytest.raises(ImproperlyConfigured, match=re.escape("BadPresence.presence_target_id must be an element id")):

        class BadPresence(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            presence_target_id = value

            @handler
            def move(self, request): ...


# --- rate per handler -----------------------------------------------------------------


def define_vote_room():
    class Vote(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "vote/<slug:room>/"
        broadcast = False

        @handler(rate="2/m")
        def vote(self, request, room, value: int):
            command("voted", value)

        @handler
        def chat(self, request, room, text: str):
            command("said", text)

    return Vote


async def test_past_its_rate_the_sender_gets_rate_limited_for_that_handler_only():
    vote = define_vote_room()
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ConsumerClient(vote, room="r", user=alice) as a, ConsumerClient(vote, room="r", user=bob) as b:
        assert await a.call("vote", 1) == [["voted", 1]]
        assert await a.call("vote", 2) == [["voted", 2]]
        await a.send("vote", 3)
        error = await a.expect_error(RATE_LIMITED)
        assert error["message"] == "More than 2 calls per minute to Vote.vote (its rate '2/m'); try again later."
        assert await a.call("chat", "still here") == [["said", "still here"]], "other handlers are unaffected"
        assert await b.call("vote", 5) == [["voted", 5]], "other users keep their own budget"
        assert await b.call("vote", 6) == [["voted", 6]]
        await a.send("vote", 4)
        await a.expect_error(RATE_LIMITED)


async def test_a_flooding_client_spends_only_its_own_budget_and_runs_nothing_past_it():
    runs = []

    class Flood(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler(rate="3/m")
        def spam(self, request, text: str):
            runs.append(text)
            command("ran", text)

    async with ConsumerClient(Flood) as hostile, ConsumerClient(Flood) as other:
        for index in range(50):
            await hostile.send("spam", str(index))
        answers = [await hostile.receive() for _ in range(50)]
        assert answers[:3] == [[["ran", "0"]], [["ran", "1"]], [["ran", "2"]]]
        assert all(commands[0][1]["code"] == RATE_LIMITED for commands in answers[3:])
        assert runs == ["0", "1", "2"]
        assert await other.call("spam", "mine") == [["ran", "mine"]], "another connection is not limited by the flood"


async def test_rate_on_the_class_limits_each_handler_and_a_handler_may_opt_out():
    class Limited(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False
        rate = "1/m"

        @handler
        def first(self, request):
            command("first")

        @handler
        def second(self, request):
            command("second")

        @handler(rate=None)
        def free(self, request):
            command("free")

    async with ConsumerClient(Limited) as client:
        assert await client.call("first") == [["first"]]
        await client.send("first")
        await client.expect_error(RATE_LIMITED)
        assert await client.call("second") == [["second"]], "each handler has its own bucket"
        for _ in range(5):
            assert await client.call("free") == [["free"]]


async def test_group_send_runs_are_never_rate_limited():
    vote = define_vote_room()
    async with ConsumerClient(vote, room="r") as a:
        for value in range(5):
            await agroup_send(vote.group_name(room="r"), "vote", value)
            assert await a.receive() == [["voted", value]]


@pytest.mark.parametrize("value", ["5/x", "five/s", "0/s", "5", 5, "-1/s", "5/ s/"])
def test_an_invalid_rate_is_refused_at_class_creation_naming_class_and_handler(value):
    msg = 'Poll.vote: @handler(rate=...): rate must be a string "<count>/<unit>" with a count of 1 or more'
    with pytest.raises(ImproperlyConfigured, match=re.escape(msg)) as raised:

        class Poll(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler(rate=value)
            def vote(self, request): ...

    assert repr(value) in str(raised.value)
    with pytest.raises(ImproperlyConfigured, match=re.escape("ClassPoll.rate: rate must be a string")):

        class ClassPoll(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            rate = value

            @handler
            def vote(self, request): ...


@pytest.mark.parametrize(
    ("text", "count", "seconds"), [("5/s", 5, 1.0), ("100/m", 100, 60.0), (" 10 / h ", 10, 3600.0)]
)
def test_valid_rates(text, count, seconds):
    class Poll(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler(rate=text)
        def vote(self, request): ...

    rate = Poll._handlers["vote"].rate
    assert (rate.count, rate.seconds) == (count, seconds)
