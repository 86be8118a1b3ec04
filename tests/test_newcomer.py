"""What a new user trips on: a handler without ``request``, a URL kwarg under another name."""

import re
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from hypergen.context import context

from hypergen_consumers import NO_PERM_REQUIRED, VALIDATION_ERROR, HypergenConsumer, autoconsumers, consumer, handler
from hypergen_consumers.callback_checks import CallbackProblem, source_problems
from hypergen_consumers.testing import ConsumerClient

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


POKER_SOURCE = '''
from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen.imports import callback


class Poker(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "poker/<slug:room_name>/"

    @handler
    def vote(self, request, room: str, value: int): ...


def page():
    callback(Poker.reverse(room_name="vip"), "vote", 5)
'''


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
