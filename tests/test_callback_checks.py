"""Callback typos are caught when the page renders, and ChatRoom.callback() builds checked callbacks."""

import logging
import re
import sys
from typing import Annotated

import pytest
from django.test import RequestFactory, override_settings
from hypergen.context import context
from hypergen.imports import button, callback, input_
from hypergen.template import hypergen
from pydantic import Field

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, autoconsumers, consumer, handler
from hypergen_consumers.declaring.callback_checks import CallbackProblem

THIS_MODULE = sys.modules[__name__]


def define_room():
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room_name>/"

        @handler
        def send_message(self, request, room_name: str, text: Annotated[str, Field(max_length=10)]): ...

        @handler
        def typing(self, request, who: str, seconds: int = 3): ...

    autoconsumers(THIS_MODULE, namespace="checked")
    return ChatRoom


def render(template):
    """Render like a liveview does (LiveviewPlugin), returning the HTML."""
    with context(request=RequestFactory().get("/page/")):
        return hypergen(template, settings={"liveview": True})


def signature(to_html):
    return to_html.hypergen_callback_signature[1]


URL = "ws://testserver/ws/checked/room/vip/"


def test_the_helper_builds_the_same_callback_as_hypergen_from_a_name_or_the_method():
    room = define_room()
    with context(request=RequestFactory().get("/")):
        by_name = room.callback("send_message", "hi", room_name="vip", debounce=200)
        by_method = room.callback(room.send_message, "hi", room_name="vip")
        optional = room.callback("typing", "ann", room_name="vip")
    assert signature(by_name) == (URL, "send_message", "hi")
    assert by_name.hypergen_callback_signature[2]["debounce"] == 200  # hypergen's options pass through.
    assert signature(by_method) == (URL, "send_message", "hi")
    assert signature(optional) == (URL, "typing", "ann")


def test_the_helper_for_a_consumer_function_takes_the_args_directly():
    @consumer(perm=NO_PERM_REQUIRED, path="<slug:chatgroup_name>/")
    def message_chatgroup(consumer, request, chatgroup_name, message): ...

    autoconsumers(THIS_MODULE, namespace="checked")
    with context(request=RequestFactory().get("/")):
        built = message_chatgroup.callback("YO!", chatgroup_name="VIP")
    assert signature(built) == ("ws://testserver/ws/checked/VIP/", "YO!")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("send_mesage", "hi"), "ChatRoom has no handler 'send_mesage'; its handlers are ['send_message', 'typing']."),
        (
            ("send_message",),
            "ChatRoom.send_message takes 1 argument(s) from the client ['text']; this callback sends 0.",
        ),
        (
            ("send_message", "a", "b"),
            "ChatRoom.send_message takes 1 argument(s) from the client ['text']; this callback sends 2.",
        ),
        (
            ("typing",),
            "ChatRoom.typing takes 1 to 2 argument(s) from the client ['who', 'seconds']; this callback sends 0.",
        ),
        (("hi",), "ChatRoom has no handler 'hi'"),  # The one-handler habit: user text read as a name.
    ],
    ids=["typo", "too-few", "too-many", "optional", "no-name"],
)
@override_settings(DEBUG=True)
def test_under_debug_a_bad_callback_raises_when_the_page_renders(args, problem):
    room = define_room()

    def page():
        button("Send", id_="send", onclick=callback(room.reverse(room_name="vip"), *args))

    with pytest.raises(CallbackProblem, match=re.escape(problem)):
        render(page)
    with pytest.raises(CallbackProblem, match=re.escape(problem)), context(request=RequestFactory().get("/")):
        room.callback(*args, room_name="vip")


def test_without_debug_a_bad_callback_is_logged_and_the_page_still_renders(caplog):
    room = define_room()

    def page():
        text = input_(id_="text")
        button("Send", id_="send", onclick=callback(room.reverse(room_name="vip"), "send_mesage", text))
        button("Ok", id_="ok", onclick=callback(room.reverse(room_name="vip"), "send_message", text))

    with caplog.at_level(logging.ERROR, logger="hypergen_consumers"):
        html = render(page)
    assert '"send_mesage"' in html
    assert [record.getMessage() for record in caplog.records] == [
        "callback problem: ChatRoom has no handler 'send_mesage'; its handlers are ['send_message', 'typing']. "
        "The first callback argument of a class consumer always names the handler: callback(url, 'send_message', ...)."
    ]


@override_settings(DEBUG=True)
def test_good_callbacks_and_callbacks_to_other_urls_render_without_a_word(caplog):
    room = define_room()

    def page():
        text = input_(id_="text")
        button("Send", id_="send", onclick=callback(room.reverse(room_name="vip"), "send_message", text))
        button("Other", id_="other", onclick=callback("ws://elsewhere.example/ws/x/", "anything", 1, 2, 3))

    with caplog.at_level(logging.ERROR, logger="hypergen_consumers"):
        render(page)
    assert caplog.records == []


def test_the_helper_refuses_a_method_of_another_class():
    room = define_room()

    class Other(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def send_message(self, request, text: str): ...

    with pytest.raises(CallbackProblem, match=re.escape("ChatRoom.callback() got <function")):
        with context(request=RequestFactory().get("/")):
            room.callback(Other.send_message, "hi", room_name="vip")


VIEWS_SOURCE = """
from hypergen.imports import *
from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler


class Lobby(HypergenConsumer):
    perm = NO_PERM_REQUIRED

    @handler
    def say(self, request, text: str): ...


def page(request):
    text = input_(id_="text")
    button("ok", id_="a", onclick=callback(Lobby.reverse(), "say", text))
    button("ok", id_="b", onclick=Lobby.callback(Lobby.say, text))
    button("typo", id_="c", onclick=callback(Lobby.reverse(), "sya", text))
    button("too many", id_="d", onclick=Lobby.callback("say", text, 42))
    button("unknown count", id_="e", onclick=callback(Lobby.reverse(), "say", *[text]))
"""


def test_manage_py_check_finds_bad_callbacks_in_the_projects_source(tmp_path, monkeypatch):
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from hypergen_consumers.declaring.checks import check_callbacks

    package = tmp_path / "callback_lint_demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text(VIEWS_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "callback_lint_demo"]):
            import callback_lint_demo.views  # noqa: F401 - imported as a URLconf would

            errors = check_callbacks()
            assert [(error.id, error.msg.split(": ", 1)[0].rsplit("/", 1)[1]) for error in errors] == [
                ("hypergen_consumers.E002", "views.py:17"),
                ("hypergen_consumers.E002", "views.py:18"),
            ]
            assert errors[0].msg.endswith(
                "Lobby has no handler 'sya'; its handlers are ['say']. The first callback "
                "argument of a class consumer always names the handler: callback(url, 'say', ...)."
            )
            assert errors[1].msg.endswith(
                "Lobby.say takes 1 argument(s) from the client ['text']; this callback sends 2."
            )
            with pytest.raises(SystemCheckError, match=re.escape("hypergen_consumers.E002")):
                call_command("check")
    finally:
        for name in ["callback_lint_demo", "callback_lint_demo.views"]:
            sys.modules.pop(name, None)
