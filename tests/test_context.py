"""hypergen's rendering context is per task and per thread: concurrent handlers never mix output,
and hypergen's own HTTP liveviews and actions still render as before."""

import asyncio
import random
import sys

from django.test import Client, override_settings
from django.urls import include, path
from hypergen.hypergen import autourls
from hypergen.imports import NO_PERM_REQUIRED, action, callback, command, div, li, liveview, loads, span, ul

from hypergen_consumers import HypergenConsumer, handler
from hypergen_consumers.testing import ConsumerClient


async def test_many_concurrent_async_and_sync_handlers_never_mix_their_output():
    class Busy(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "busy/<int:who>/"
        target_id = "out"
        broadcast = False

        @handler
        async def interleave(self, request, who: int, n: int):
            with ul(id_=f"list-{who}"):
                for index in range(5):
                    li(f"{who}:{n}:{index}")
                    await asyncio.sleep(random.random() / 1000)  # Let other handlers run mid-render.
            command("done", who, n)

        @handler
        def blocking(self, request, who: int, n: int):
            with div(id_=f"div-{who}"):
                for index in range(5):
                    span(f"{who}:{n}:{index}")
            command("done", who, n)

    clients = [ConsumerClient(Busy, who=who) for who in range(40)]
    await asyncio.gather(*(client.connect() for client in clients))
    try:

        async def converse(who, client):
            for n in range(10):
                name = "interleave" if (who + n) % 2 else "blocking"
                commands = await client.call(name, n)
                tag = "li" if name == "interleave" else "span"
                items = "".join(f"<{tag}>{who}:{n}:{index}</{tag}>" for index in range(5))
                wrapper = f'<ul id="list-{who}">{items}</ul>' if tag == "li" else f'<div id="div-{who}">{items}</div>'
                assert commands == [["hypergen.morph", "out", wrapper], ["done", who, n]]

        await asyncio.gather(*(converse(who, client) for who, client in enumerate(clients)))
    finally:
        await asyncio.gather(*(client.close() for client in clients))


@liveview(perm=NO_PERM_REQUIRED, autourl=False)
def page(request):
    with div(id_="content"):
        span("Hello from a liveview")
        div("click", id_="clicker", onclick=callback(press))


@action(perm=NO_PERM_REQUIRED, target_id="content", autourl=True)
def press(request):
    span("pressed")


class urls:
    urlpatterns = [path("page/", page), path("", include((autourls(sys.modules[__name__], namespace="ctx"), "ctx")))]


@override_settings(ROOT_URLCONF=urls)
def test_hypergen_liveviews_and_actions_still_render():
    from django.urls import clear_url_caches

    clear_url_caches()
    client = Client()
    html = client.get("/page/").content.decode()
    assert "<span>Hello from a liveview</span>" in html
    assert "clicker__onclick" in html
    response = client.post("/press/", {"hypergen_data": '{"args": [], "meta": {}}'})
    assert response.status_code == 200
    assert ["hypergen.morph", "content", "<span>pressed</span>"] in list(loads(response.content))


def test_a_new_thread_touching_the_context_first_keeps_the_state_it_was_given():
    """threading.local re-runs __init__ per thread; that must not wipe ContextVar state."""
    import contextvars
    import threading

    from hypergen.context import context

    from hypergen_consumers._compat.hypergen_context import HYPERGEN_CONTEXT

    seen = []

    def worker():
        HYPERGEN_CONTEXT.set(HYPERGEN_CONTEXT.get().set("request", "given"))
        seen.append(context.request)  # The first touch of `context` in this thread.

    thread = threading.Thread(target=contextvars.copy_context().run, args=(worker,))
    thread.start()
    thread.join()
    assert seen == ["given"]


def test_the_rendering_state_map_behaves_like_the_pmap_hypergen_expects():
    from pyrsistent import pmap

    from hypergen_consumers._compat.pmap import fast_pmap

    state = fast_pmap({"into": [1], "target_id": "t"})
    assert state == pmap({"into": [1], "target_id": "t"})
    assert (state.into, state["target_id"], state.get("missing", 7), "into" in state, len(state)) == (
        [1],
        "t",
        7,
        True,
        2,
    )
    assert dict(state.update(pmap({"target_id": "u"}))) == {"into": [1], "target_id": "u"}  # What context(at=...) does.
    assert dict(state.set("ids", set())) == {"into": [1], "target_id": "t", "ids": set()}
    assert dict(state) == {"into": [1], "target_id": "t"}  # Unchanged: immutable.


def test_keys_named_like_a_method_never_hide_it_on_the_context_or_the_state_map():
    """Keys are read before a failed attribute lookup now (it was dearer); names the
    context or the map answer themselves still win, as they did."""
    import pytest
    from hypergen.context import context

    from hypergen_consumers._compat.pmap import fast_pmap

    with context(replace="a key", clone="another", own_key=1):
        assert callable(context.replace) and callable(context.clone)
        assert (context.own_key, context["replace"], "clone" in context) == (1, "a key", True)
        with pytest.raises(AttributeError, match="No such attribute: missing"):
            context.missing  # noqa: B018
    state = fast_pmap({"items": "a key", "commands": [1]})
    assert callable(state.items) and state["items"] == "a key" and state.commands == [1]
    assert getattr(state, "missing", None) is None
