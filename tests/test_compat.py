"""Patches of other libraries' internals (hypergen_consumers/_compat/): each checks the shape it
relies on, falls back to the plain way with a CompatWarning when the shape changed, and the
package keeps behaving correctly on the fallback. None is applied by importing the package."""

import dataclasses
import json
import os
import subprocess
import sys
import weakref
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from hypergen.context import Context, context
from hypergen.imports import NO_PERM_REQUIRED, command, li, span, ul
from hypergen.template import TemplatePlugin
from pyrsistent import PMap

from hypergen_consumers import HypergenConsumer, _compat, handler
from hypergen_consumers._compat import (
    CompatWarning,
    apply_all,
    channels_consumer,
    channels_db,
    django_db,
    hypergen_context,
    pmap,
    rendering_state,
)
from hypergen_consumers.connection import db_cleanup
from hypergen_consumers.connection.db_cleanup import cleanup_needed
from hypergen_consumers.testing import ConsumerClient

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, settings: str = "tests.settings") -> dict:
    """Run ``code`` in a fresh interpreter (nothing patched yet); it prints one JSON line last."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_without_the_app_leaves_hypergens_context_alone():
    outcome = run_python(
        """
import json, django
from django.conf import settings
settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "hypergen"])
django.setup()
import hypergen.context
import hypergen_consumers, hypergen_consumers.imports, hypergen_consumers.testing, hypergen_consumers.connection.rendering
from hypergen_consumers._compat import pmap, rendering_state, django_db
print(json.dumps([type(hypergen.context.context).__module__, pmap.is_active(), rendering_state.is_active(),
                  django_db.is_active()]))
"""
    )
    assert outcome == ["hypergen.context", False, False, False]


def test_the_app_applies_every_patch_when_ready_and_applying_again_changes_nothing(recwarn):
    assert type(context) is hypergen_context.ContextVarContext
    assert (pmap.is_active(), rendering_state.is_active(), django_db.is_active()) == (True, True, True)
    assert set(apply_all().values()) == {True}
    assert not [w for w in recwarn if issubclass(w.category, CompatWarning)]


class Interleave(HypergenConsumer):
    """Async handlers that yield to the event loop mid-render: the case the context patch exists for."""

    perm = NO_PERM_REQUIRED
    path = "compat-interleave/<int:who>/"
    target_id = "out"
    broadcast = False

    @handler
    async def render(self, request, who: int, n: int):
        import asyncio

        with ul():
            for index in range(4):
                li(f"{who}:{n}:{index}")
                await asyncio.sleep(0.001 * ((who + index) % 3))
        command("done", who, n)

    @handler
    async def other(self, request):
        """A second handler, so frames name theirs."""


async def converse_in_parallel(connections_count: int = 8, rounds: int = 5) -> list[str]:
    """Every connection renders concurrently; returns the problems seen (empty when correct)."""
    import asyncio

    problems = []
    clients = [ConsumerClient(Interleave, who=who) for who in range(connections_count)]
    await asyncio.gather(*(client.connect() for client in clients))

    async def converse(who, client):
        for n in range(rounds):
            items = "".join(f"<li>{who}:{n}:{index}</li>" for index in range(4))
            commands = await client.call("render", n)
            if commands != [["hypergen.morph", "out", f"<ul>{items}</ul>"], ["done", who, n]]:
                problems.append(repr(commands))

    try:
        await asyncio.gather(*(converse(who, client) for who, client in enumerate(clients)))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    return problems


FALLBACK_SCRIPT = """
import asyncio, json, warnings, threading
import hypergen.context
{break_it}
import django
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    django.setup()
from tests.test_compat import converse_in_parallel
from hypergen_consumers import _compat
from hypergen_consumers._compat import CompatWarning, pmap, rendering_state
problems = asyncio.run(converse_in_parallel())
print(json.dumps({{
    "warnings": [str(w.message) for w in caught if issubclass(w.category, CompatWarning)],
    "context_class": type(hypergen.context.context).__name__,
    "pmap": pmap.is_active(), "rendering_state": rendering_state.is_active(),
    "problems": problems,
}}))
"""


def test_hypergen_context_check_names_what_changed():
    class OtherContext(Context):
        pass

    assert hypergen_context.check(SimpleNamespace(Context=Context, context=OtherContext())) == (
        "hypergen.context.context is a test_hypergen_context_check_names_what_changed.<locals>.OtherContext, "
        "not a plain Context"
    )
    assert hypergen_context.check(SimpleNamespace(Context=object, context=None)) == (
        "hypergen.context.Context is not the class this package subclasses"
    )


def test_without_the_context_patch_async_handlers_still_never_mix_their_output():
    """hypergen's context is not a plain Context any more: it is left alone, renders take turns."""
    outcome = run_python(
        FALLBACK_SCRIPT.format(
            break_it=(
                "class OtherContext(hypergen.context.Context): pass\n"
                "threading.local.__setattr__(hypergen.context.context, '__class__', OtherContext)"
            )
        )
    )
    assert outcome["context_class"] == "OtherContext"
    assert [message.split(":")[1] for message in outcome["warnings"]] == [" hypergen context"]
    assert "Falling back to hypergen's thread-local context" in outcome["warnings"][0]
    assert outcome["problems"] == []


def test_with_the_context_patch_the_same_conversation_is_correct():
    outcome = run_python(FALLBACK_SCRIPT.format(break_it=""))
    assert outcome == {
        "warnings": [],
        "context_class": "ContextVarContext",
        "pmap": True,
        "rendering_state": True,
        "problems": [],
    }


def test_a_renamed_pmap_slot_falls_back_to_plain_pmaps_and_rendering_stays_correct():
    """pyrsistent keeps _buckets, but no longer as a slot: no KeyError, a warning, plain pmaps."""
    outcome = run_python(
        FALLBACK_SCRIPT.format(
            break_it=(
                "from pyrsistent import PMap\n"
                "slot = PMap.__dict__['_buckets']\n"
                "PMap._buckets = property(slot.__get__, slot.__set__)"
            )
        )
    )
    assert [message.split(":")[1] for message in outcome["warnings"]] == [" pyrsistent PMap"]
    assert "pyrsistent's PMap has no slot '_buckets'" in outcome["warnings"][0]
    assert (outcome["pmap"], outcome["context_class"], outcome["problems"]) == (False, "ContextVarContext", [])


def test_pmap_check_with_a_pmap_without_slots():
    class SlotlessMap:
        pass

    assert (
        pmap.check(SlotlessMap)
        == "pyrsistent's PMap has no slot '_size' or '_buckets' (pyrsistent changed its internals)"
    )


def test_plain_pmap_fallback_builds_ordinary_pmaps(monkeypatch):
    monkeypatch.setattr(pmap, "_active", False)
    state = pmap.fast_pmap({"into": [1]})
    assert type(state) is PMap and state.into == [1]
    monkeypatch.setattr(pmap, "_active", True)
    assert type(pmap.fast_pmap({"into": [1]})) is not PMap


@contextmanager
def template_plugin_with_a_new_key():
    """A hypergen whose TemplatePlugin sets one more key than the fast state knows of."""
    original = TemplatePlugin.context

    @contextmanager
    def newer_context(self):
        with original(self), context(at="hypergen", newer_key="from hypergen"):
            yield

    TemplatePlugin.context = newer_context
    try:
        yield
    finally:
        TemplatePlugin.context = original


def test_rendering_state_check_notices_a_new_key_in_hypergens_state(monkeypatch):
    monkeypatch.setattr(rendering_state, "_active", False)
    assert rendering_state.check() is None
    with template_plugin_with_a_new_key():
        problem = rendering_state.check()
        assert problem.startswith("hypergen()'s rendering state is now [") and "'newer_key'" in problem
        with pytest.warns(CompatWarning, match=r"hypergen rendering state: hypergen\(\)'s rendering state is now"):
            applied = apply_all()
    assert applied["hypergen rendering state"] is False and not rendering_state.is_active()


async def test_on_the_rendering_state_fallback_handlers_see_hypergens_own_state(monkeypatch):
    class Reader(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "out"
        broadcast = False

        @handler
        async def read(self, request):
            span(context.hypergen.newer_key, " ", sorted(context.hypergen.matched_perms) == [])
            command("done")

        @handler
        async def other(self, request):
            """A second handler, so frames name theirs."""

    monkeypatch.setattr(rendering_state, "_active", False)
    with template_plugin_with_a_new_key():
        async with ConsumerClient(Reader) as client:
            assert await client.call("read") == [["hypergen.morph", "out", "<span>from hypergen True</span>"], ["done"]]
    assert await converse_in_parallel(4, 3) == []


def test_django_db_check_with_a_wrapper_without_thread_ident():
    assert django_db.check([SimpleNamespace(connection=None)]) == (
        "SimpleNamespace has no integer _thread_ident (Django changed its internals)"
    )
    assert django_db.check() is None


@pytest.mark.django_db(transaction=True)
def test_without_thread_ident_every_open_connection_makes_the_hop(monkeypatch):
    """Only this thread's connection is watched (other tests may leave theirs open in other threads)."""
    connections["default"].cursor().execute("SELECT 1")  # Open in this (the "event loop") thread.
    monkeypatch.setattr(db_cleanup, "_tracked", (weakref.ref(connections["default"]),))
    try:
        assert cleanup_needed() is False  # Patched: this thread's own connection is never closed by a hop.
        monkeypatch.setattr(django_db, "_active", False)
        assert cleanup_needed() is True  # Fallback: it cannot tell, so it hops, as Channels always does.
    finally:
        monkeypatch.undo()
    never_connected = connections.create_connection("default")
    monkeypatch.setattr(db_cleanup, "_tracked", (weakref.ref(never_connected),))
    monkeypatch.setattr(django_db, "_active", False)
    assert cleanup_needed() is False  # Nothing open: no hop, even on the fallback.


def with_check(monkeypatch, name, check):
    """Make apply_all() see ``check`` for the patch called ``name``."""
    patches = tuple(
        dataclasses.replace(patch, check=check) if patch.name == name else patch for patch in _compat.PATCHES
    )
    assert len({patch.check for patch in patches} - {patch.check for patch in _compat.PATCHES}) == 1
    monkeypatch.setattr(_compat, "PATCHES", patches)


def test_apply_all_warns_and_leaves_the_django_db_patch_off(monkeypatch):
    monkeypatch.setattr(django_db, "_active", False)
    with_check(monkeypatch, "Django connection thread", lambda: django_db.check([SimpleNamespace()]))
    with pytest.warns(CompatWarning, match="Django connection thread: SimpleNamespace has no integer _thread_ident"):
        assert apply_all()["Django connection thread"] is False
    assert django_db.is_active() is False


def test_channels_db_check_without_aclose_old_connections(monkeypatch):
    assert (
        channels_db.check(SimpleNamespace()) == "channels.db has no aclose_old_connections (Channels changed its API)"
    )
    monkeypatch.setattr(channels_db, "_implementation", channels_db._plain_aclose_old_connections)
    monkeypatch.delattr("channels.db.aclose_old_connections")
    with pytest.warns(
        CompatWarning, match="Channels aclose_old_connections: channels.db has no aclose_old_connections"
    ):
        assert apply_all()["Channels aclose_old_connections"] is False
    assert channels_db._implementation is channels_db._plain_aclose_old_connections


@pytest.mark.django_db(transaction=True)
async def test_without_channels_aclose_old_connections_connections_are_still_cleaned_up(monkeypatch):
    """The fallback does Channels' job: it health-checks this worker thread's connection."""
    monkeypatch.setattr(channels_db, "_implementation", channels_db._plain_aclose_old_connections)
    monkeypatch.delattr("channels.db.aclose_old_connections")

    def open_with_errors() -> bool:
        connection = connections["default"]
        connection.cursor().execute("SELECT 1")
        connection.errors_occurred = True  # close_old_connections() health-checks such a connection.
        return connection.connection is not None

    def errors_occurred() -> bool:
        return connections["default"].errors_occurred

    assert await sync_to_async(open_with_errors)() is True
    await channels_db.aclose_old_connections()
    assert await sync_to_async(errors_occurred)() is False  # Checked in the worker thread, found usable.


class ChangedAsyncConsumer:
    """What a Channels release that changed AsyncConsumer.__call__ and dispatch might look like."""

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.tracer = scope.get("trace")  # Something new the copy in lifecycle would not do.

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)  # noqa: F821 - never run
        await handler(message)  # No aclose_old_connections any more.


def test_channels_consumer_checks_name_what_changed():
    assert channels_consumer.check_call() is None
    assert channels_consumer.check_dispatch() is None
    assert channels_consumer.check_call(ChangedAsyncConsumer) == (
        "AsyncConsumer.__call__ changed: it now also uses ['get', 'tracer']"
    )
    assert channels_consumer.check_dispatch(ChangedAsyncConsumer) == (
        "AsyncConsumer.dispatch changed: it no longer uses ['ValueError', 'aclose_old_connections']"
    )
    assert channels_consumer.check_call(utils=SimpleNamespace()) == (
        "channels.utils has no await_many_dispatch (Channels changed its internals)"
    )
    assert channels_consumer.check_dispatch(module=SimpleNamespace()) == (
        "channels.consumer has no get_handler_name (Channels changed its internals)"
    )


def test_apply_all_warns_and_leaves_the_channels_consumer_copies_off(monkeypatch):
    monkeypatch.setattr(channels_consumer, "_call_active", False)
    monkeypatch.setattr(channels_consumer, "_dispatch_active", False)
    monkeypatch.setattr("channels.consumer.AsyncConsumer.__call__", ChangedAsyncConsumer.__call__)
    monkeypatch.setattr("channels.consumer.AsyncConsumer.dispatch", ChangedAsyncConsumer.dispatch)
    with pytest.warns(CompatWarning) as caught:
        applied = apply_all()
    assert (applied["Channels AsyncConsumer.__call__"], applied["Channels AsyncConsumer.dispatch"]) == (False, False)
    assert (channels_consumer.call_is_ours(), channels_consumer.dispatch_is_ours()) == (False, False)
    messages = [str(w.message) for w in caught]
    assert any("AsyncConsumer.__call__ changed" in m and "Channels' own AsyncConsumer.__call__" in m for m in messages)
    assert any("AsyncConsumer.dispatch changed" in m and "Channels' own AsyncConsumer.dispatch" in m for m in messages)


class Fallbacks(HypergenConsumer):
    """Every kind of message a connection gets: client frames, broadcasts, group_send runs, event methods."""

    perm = NO_PERM_REQUIRED
    path = "compat-fallbacks/"
    target_id = "out"
    connections: ClassVar[list] = []

    def on_connect(self, request):
        Fallbacks.connections.append(self)

    @handler
    def post(self, request, text: str):
        span(text)

    @handler(broadcast=False)
    def whisper(self, request, text: str):
        command("whispered", text)

    def ping_event(self, message):
        """A plain ``def`` event method, as upstream hypergen writes them (runs in a worker thread)."""
        self.send_commands([["pong", message["n"]]])


async def round_trip_on_the_fallbacks():
    """Two connections talk through every path; returns the channel layer's groups afterwards."""
    from channels.layers import get_channel_layer

    from hypergen_consumers import agroup_send

    Fallbacks.connections.clear()
    async with ConsumerClient(Fallbacks) as first, ConsumerClient(Fallbacks) as second:
        assert await first.call("post", "hello") == [["hypergen.morph", "out", "<span>hello</span>"]]
        assert second.morphed("out", await second.receive()) == "<span>hello</span>"
        assert await second.call("whisper", "psst") == [["whispered", "psst"]]
        await first.expect_nothing()
        await agroup_send(Fallbacks.group_name(), "whisper", "from the server")
        assert await first.receive() == [["whispered", "from the server"]]
        assert await second.receive() == [["whispered", "from the server"]]
        await get_channel_layer().group_send(Fallbacks.group_name(), {"type": "ping.event", "n": 7})
        assert await first.receive() == [["pong", 7]]
        assert await second.receive() == [["pong", 7]]
        await first.send("nope")
        assert (await first.expect_error("unknown_handler"))["message"].startswith("Fallbacks has no handler 'nope'")
    return get_channel_layer().groups


async def test_on_channels_own_call_a_connection_works_and_leaves_its_groups(monkeypatch):
    monkeypatch.setattr(channels_consumer, "_call_active", False)
    assert await round_trip_on_the_fallbacks() == {}
    ours = [c for c in Fallbacks.connections if c.channel_receive == c._receive_from_layer]
    assert len(Fallbacks.connections) == 2 and ours == []  # Channels' receive, not the outage-surviving one.


async def test_on_channels_own_dispatch_every_message_makes_the_clean_up_hop(monkeypatch):
    import channels.consumer

    hops = []
    real = channels.consumer.aclose_old_connections

    async def counting():
        hops.append(1)
        await real()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    assert await round_trip_on_the_fallbacks() == {}
    assert hops == []  # Our dispatch: no Channels hop at all.
    monkeypatch.setattr(channels_consumer, "_dispatch_active", False)
    assert await round_trip_on_the_fallbacks() == {}
    assert len(hops) >= 10  # Channels' dispatch: connects, frames, broadcasts, runs each made it.


class ChangedWebsocketSend:
    """What a Channels release that made AsyncWebsocketConsumer.send do more might look like."""

    async def send(self, text_data=None, bytes_data=None, close=False):
        self.sent_count = getattr(self, "sent_count", 0) + 1  # Something new a direct base_send would skip.
        await super().send({"type": "websocket.send", "text": text_data})


def test_channels_send_check_names_what_changed():
    assert channels_consumer.check_send() is None
    assert channels_consumer.check_send(ChangedWebsocketSend) == (
        "AsyncWebsocketConsumer.send changed: it now also uses ['getattr', 'sent_count']"
    )
    assert channels_consumer.check_send(consumer_class=ChangedWebsocketSend) == (
        "AsyncConsumer.send changed: it now also uses ['getattr', 'send', 'sent_count', 'super']"
    )


async def test_on_channels_own_send_every_frame_goes_through_it(monkeypatch):
    from channels.generic.websocket import AsyncWebsocketConsumer

    sent = []
    real = AsyncWebsocketConsumer.send

    async def counting(self, text_data=None, bytes_data=None, close=False):
        sent.append(text_data)
        await real(self, text_data=text_data, bytes_data=bytes_data, close=close)

    monkeypatch.setattr(AsyncWebsocketConsumer, "send", counting)
    assert await round_trip_on_the_fallbacks() == {}
    assert sent == []  # Handed to the server directly.
    monkeypatch.setattr(channels_consumer, "_send_active", False)
    assert await round_trip_on_the_fallbacks() == {}
    assert len(sent) >= 8  # Through Channels' send: replies, broadcasts, runs, the error.


class OwnWayIn(Fallbacks):
    """A class that overrides one step of Channels' way in for a client frame, and sees every frame there."""

    path = "compat-own-way-in/"
    seen: ClassVar[list] = []

    async def receive_json(self, content, **kwargs):
        OwnWayIn.seen.append(content["args"])
        await super().receive_json(content, **kwargs)


async def test_a_class_overriding_receive_json_gets_every_frame_through_it():
    from hypergen_consumers.connection.client_frames import own_receive_path

    assert own_receive_path(Fallbacks) is True
    assert own_receive_path(OwnWayIn) is False
    OwnWayIn.seen.clear()
    async with ConsumerClient(OwnWayIn) as page:
        assert await page.call("whisper", "psst") == [["whispered", "psst"]]
    assert OwnWayIn.seen == [["whisper", "psst"]]


async def test_a_way_in_patched_on_the_class_counts_from_the_next_connection(monkeypatch):
    from hypergen_consumers.connection.client_frames import ClientFramesMixin

    async with ConsumerClient(Fallbacks) as page:
        assert await page.call("whisper", "before") == [["whispered", "before"]]
    seen = []

    async def spying(self, content, **kwargs):
        seen.append(content["args"])
        await ClientFramesMixin.receive_json(self, content, **kwargs)

    monkeypatch.setattr(Fallbacks, "receive_json", spying, raising=False)
    async with ConsumerClient(Fallbacks) as page:
        assert await page.call("whisper", "after") == [["whispered", "after"]]
    assert seen == [["whisper", "after"]]


# --- channels-redis's blocking read (see tests/test_scale_defaults.py for the 1,000-socket proof) ---


def test_the_blocking_read_ends_before_redis_py_s_socket_timeout():
    from channels_redis.core import RedisChannelLayer

    from hypergen_consumers._compat import channels_redis_receive

    assert channels_redis_receive.check() is None
    default = RedisChannelLayer(hosts=["redis://127.0.0.1:1"])  # Builds no connection.
    channels_redis_receive.fit_blocking_read(default)
    timeout = channels_redis_receive.socket_timeout_of(default.hosts[0])
    if timeout is not None:  # redis-py 8: 5 s by default.
        assert default.brpop_timeout < timeout
    slow = RedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:1", "socket_timeout": 1}])
    channels_redis_receive.fit_blocking_read(slow)
    assert slow.brpop_timeout == 0.5
    generous = RedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:1", "socket_timeout": 60}])
    channels_redis_receive.fit_blocking_read(generous)
    assert generous.brpop_timeout == RedisChannelLayer.brpop_timeout, "already fits: left as channels-redis has it"


def test_a_changed_channels_redis_is_noticed_not_patched():
    from hypergen_consumers._compat import channels_redis_receive

    class NoTimeout:
        async def receive_single(self, channel):
            return channel

    class Unread:
        brpop_timeout = 5

        async def receive_single(self, channel):
            return channel

    assert "no numeric brpop_timeout" in channels_redis_receive.check(NoTimeout)
    assert "no longer reads brpop_timeout" in channels_redis_receive.check(Unread)
