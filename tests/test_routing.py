"""autoconsumers() and reverse()."""

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from channels.routing import URLRouter
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.urls import NoReverseMatch
from hypergen.context import context
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, ConsumerNotMounted, HypergenConsumer, autoconsumers, consumer, handler
from hypergen_consumers.routing.routes import refuse_unmatched
from hypergen_consumers.testing import ConsumerClient

THIS_MODULE = sys.modules[__name__]
ROOT = Path(__file__).resolve().parent.parent


def define_room():
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<str:room_name>/"

        @handler
        def post(self, request): ...

    return ChatRoom


def test_autoconsumers_mounts_each_consumer_under_ws_namespace():
    room = define_room()

    @consumer(perm=NO_PERM_REQUIRED)
    def lobby(consumer, request): ...

    @consumer(perm=NO_PERM_REQUIRED, autourl=False)
    def unlisted(consumer, request): ...

    patterns = autoconsumers(THIS_MODULE, namespace="chat")
    # Specific routes first (static segments before converters), so none shadows another; then the refusal.
    assert [str(p.pattern) for p in patterns] == ["ws/chat/lobby/", "ws/chat/room/<str:room_name>/", "^ws/chat/"]
    assert [p.callback.consumer_class for p in patterns[:-1]] == [lobby, room]
    assert patterns[-1].callback is refuse_unmatched  # the clean refusal for paths nobody serves
    URLRouter(patterns)  # Channels accepts the list as it is.


def test_autoconsumers_takes_a_dotted_module_path():
    patterns = autoconsumers("tests.consumers", namespace="dotted")
    assert [str(p.pattern) for p in patterns] == [
        "ws/dotted/secret/",
        "ws/dotted/slow/",
        "ws/dotted/database_probe/",
        "ws/dotted/numbers/",
        "ws/dotted/blocker/",
        "ws/dotted/load/<int:team>/",
        "ws/dotted/echo/<slug:room>/",
        "ws/dotted/big/<slug:room>/",
        "ws/dotted/lobby/<slug:room>/",
        "ws/dotted/crowd/<slug:room>/",
        "ws/dotted/slow-meta/<slug:token>/",
        "ws/dotted/status/<slug:room>/",
        "ws/dotted/leaving/<slug:room>/",
        "^ws/dotted/",
    ]


def test_reverse_builds_ws_and_wss_urls_from_the_current_request():
    room = define_room()
    autoconsumers(THIS_MODULE, namespace="chat")
    with context(request=RequestFactory().get("/")):
        assert room.reverse(room_name="vip") == "ws://testserver/ws/chat/room/vip/"
        assert room.reverse("vip") == "ws://testserver/ws/chat/room/vip/"
        assert room.reverse(room_name="日本 語") == "ws://testserver/ws/chat/room/%E6%97%A5%E6%9C%AC%20%E8%AA%9E/"
        with pytest.raises(NoReverseMatch):
            room.reverse(room_name="a/b")
    with context(request=RequestFactory().get("/", secure=True, HTTP_HOST="example.com")):
        assert room.reverse(room_name="vip") == "wss://example.com/ws/chat/room/vip/"


async def test_a_reversed_unicode_url_connects_to_its_own_group():
    room = define_room()
    autoconsumers(THIS_MODULE, namespace="chat")
    async with ConsumerClient(room, room_name="日本 語") as client:
        assert client.path == "/ws/chat/room/日本 語/".replace("日本 語", "%E6%97%A5%E6%9C%AC%20%E8%AA%9E")
        assert client.communicator.scope["path"] == "/ws/chat/room/日本 語/"


def test_reverse_of_an_unmounted_consumer_says_what_to_do():
    room = define_room()
    message = (
        "ChatRoom is not mounted: add autoconsumers(tests.test_routing, namespace=...) to a websocket "
        "URLRouter (your routing.py)."
    )
    with context(request=RequestFactory().get("/")), pytest.raises(ConsumerNotMounted, match=re.escape(message)):
        room.reverse(room_name="vip")
    assert issubclass(ConsumerNotMounted, ImproperlyConfigured)


def test_reverse_outside_a_request_says_what_to_do():
    room = define_room()
    autoconsumers(THIS_MODULE, namespace="chat")
    with pytest.raises(
        RuntimeError, match=re.escape("ChatRoom.reverse() builds an absolute ws:// URL from the current request")
    ):
        room.reverse(room_name="vip")


def test_reverse_imports_the_asgi_application_like_django_loads_urls():
    """In a fresh process nothing imported routing.py yet; reverse() imports ASGI_APPLICATION."""
    code = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from hypergen.context import context\n"
        "from tests.consumers import Echo\n"
        "with context(request=RequestFactory().get('/')):\n"
        "    print(Echo.reverse(room='x'))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ws://testserver/ws/tests/echo/x/"


@pytest.mark.parametrize("namespace", ["", "with space", "/leading", "trailing/", None])
def test_a_bad_namespace_is_refused(namespace):
    define_room()
    with pytest.raises(ImproperlyConfigured, match="the namespace must be letters, digits"):
        autoconsumers(THIS_MODULE, namespace=namespace)


def test_a_module_without_consumers_is_refused():
    with pytest.raises(ImproperlyConfigured, match=re.escape("autoconsumers(os) found no HypergenConsumer subclass")):
        autoconsumers(os, namespace="x")


def test_two_modules_mounting_one_route_in_one_namespace_are_refused():
    first, second = types.ModuleType("app_one.consumers"), types.ModuleType("app_two.consumers")
    for module in (first, second):
        type(HypergenConsumer)(
            "Room",
            (HypergenConsumer,),
            {"perm": NO_PERM_REQUIRED, "post": handler(lambda self, request: None), "__module__": module.__name__},
        )
    autoconsumers(first, namespace="shared")
    autoconsumers(second, namespace="other")  # Another namespace: fine.
    with pytest.raises(ImproperlyConfigured, match=re.escape("are both mounted at 'ws/shared/room/'")):
        autoconsumers(second, namespace="shared")


def shadowing_module(name, paths):
    """A module defining one consumer per path, in this order (as a user writes them)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    consumers = []
    for index, route in enumerate(paths):
        namespace = {
            "__module__": name,
            "perm": NO_PERM_REQUIRED,
            "path": route,
            "who": handler(lambda self, request: command("served_by", type(self).__name__)),
        }
        consumers.append(type(f"Consumer{index}", (HypergenConsumer,), namespace))
        setattr(module, f"Consumer{index}", consumers[-1])
    return module, consumers


async def test_a_static_route_defined_after_a_converter_still_reaches_its_consumer():
    module, (room, increment) = shadowing_module("shadow_ok", ["<slug:room_name>/", "increment/"])
    try:
        router = URLRouter(autoconsumers(module, namespace="chat"))
        with context(request=RequestFactory().get("/")):
            url = increment.reverse()
        assert url == "ws://testserver/ws/chat/increment/"
        from channels.testing import WebsocketCommunicator

        communicator = WebsocketCommunicator(router, "/ws/chat/increment/", headers=[(b"host", b"testserver")])
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"args": ["who"], "meta": {}})
        assert await communicator.receive_json_from() == [["served_by", "Consumer1"]]
        await communicator.disconnect()
    finally:
        sys.modules.pop("shadow_ok")


def test_routes_that_no_order_can_separate_are_refused_naming_both():
    module, (anything, slug) = shadowing_module("shadow_bad", ["<str:name>/", "<slug:name>/x/"])
    sys.modules.pop("shadow_bad")
    # These two do not collide (different depth): fine.
    autoconsumers(module, namespace="fine")
    module, (wide, narrow) = shadowing_module("shadow_bad2", ["<str:name>/", "<slug:name>/"])
    sys.modules.pop("shadow_bad2")
    message = (
        "shadow_bad2.Consumer0's URL /ws/chat/hypergen-sample/ is served by shadow_bad2.Consumer1, whose route "
        "comes first in autoconsumers(shadow_bad2, namespace='chat')."
    )
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        autoconsumers(module, namespace="chat")


def test_manage_py_check_reports_a_consumer_shadowed_in_the_projects_router():
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.test import override_settings

    from hypergen_consumers.declaring.checks import check_websocket_routes

    rooms, (room,) = shadowing_module("check_rooms", ["<slug:room_name>/"])
    counters, (increment,) = shadowing_module("check_counters", ["increment/"])
    asgi = types.ModuleType("check_asgi")
    sys.modules["check_asgi"] = asgi
    try:
        # Two autoconsumers() lists joined by hand, the wide one first.
        patterns = autoconsumers(rooms, namespace="chat") + autoconsumers(counters, namespace="chat")
        asgi.application = ProtocolTypeRouter(
            {"websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(patterns)))}
        )
        with override_settings(ASGI_APPLICATION="check_asgi.application"):
            errors = check_websocket_routes()
            assert [error.id for error in errors] == ["hypergen_consumers.E001"]
            assert errors[0].obj is increment
            assert errors[0].msg.startswith(
                "check_counters.Consumer0's URL /ws/chat/increment/ is served by check_rooms.Consumer0, "
                "whose route comes first in the websocket URLRouter of check_asgi.application."
            )
            with pytest.raises(SystemCheckError, match=re.escape("hypergen_consumers.E001")):
                call_command("check")
            asgi.application = URLRouter(
                autoconsumers(counters, namespace="chat") + autoconsumers(rooms, namespace="chat")
            )
            assert check_websocket_routes() == []
        with override_settings(ASGI_APPLICATION="tests.asgi.application"):
            assert check_websocket_routes() == []
    finally:
        for name in ["check_rooms", "check_counters", "check_asgi"]:
            sys.modules.pop(name, None)


def test_the_refusal_route_never_hides_another_autoconsumers_call_in_the_same_namespace():
    first, second = types.ModuleType("first_mod"), types.ModuleType("second_mod")
    for module, route in ((first, "a/"), (second, "b/")):
        sys.modules[module.__name__] = module
        type(
            "Thing",
            (HypergenConsumer,),
            {
                "perm": NO_PERM_REQUIRED,
                "path": route,
                "__module__": module.__name__,
                "go": handler(lambda self, request: None),
            },
            localns={},
        )
    try:
        patterns = [*autoconsumers(first, namespace="same"), *autoconsumers(second, namespace="same")]
        refusal = patterns[1].pattern
        assert refusal.match("ws/same/b/") is None  # the second call's consumer
        assert refusal.match("ws/same/a/") is None
        assert refusal.match("ws/same/c/") is not None
        assert refusal.match("ws/other/c/") is None
    finally:
        del sys.modules["first_mod"], sys.modules["second_mod"]
