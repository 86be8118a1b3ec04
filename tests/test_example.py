"""The example project, served by a real daphne: its pages render and its consumers answer."""

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne, example_env, migrate_example

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    env = example_env(tmp_path_factory.mktemp("db") / "db.sqlite3")
    migrate_example(env)
    with daphne("example.asgi:application", settings="example.settings", env=env) as (port, _):
        yield port


async def receive(socket):
    """The next frame, skipping the chat room's who's-online renders (they come whenever presence changes)."""
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=5))
        if not (len(frame) == 1 and frame[0][:2] == ["hypergen.morph", "online"]):
            return frame


@pytest.mark.parametrize(
    "path", ["/", "/chat/lobby/", "/poker/team/", "/counter/", "/push/", "/login/", "/notice/", "/mistakes/"]
)
def test_pages_render_with_the_client_script(example, path):
    html = urllib.request.urlopen(f"http://127.0.0.1:{example}{path}").read().decode()
    assert '<script src="/static/hypergen/dist/hypergen.js"></script>' in html
    assert html.count('<script src="/static/hypergen_consumers/client.js"') == 1  # Marked for the overlay under DEBUG.


def test_every_page_links_the_stylesheet_and_it_is_served(example):
    """The site's whole look is one stylesheet: linked from the base template, served as CSS."""
    html = urllib.request.urlopen(f"http://127.0.0.1:{example}/").read().decode()
    assert 'href="/static/chat/site.css"' in html
    response = urllib.request.urlopen(f"http://127.0.0.1:{example}/static/chat/site.css")
    assert response.headers["Content-Type"].startswith("text/css")
    assert "html.hypergen-websocket-offline .offline-banner" in response.read().decode()  # The offline badge.


def test_the_chat_page_opens_its_room(example):
    html = urllib.request.urlopen(f"http://127.0.0.1:{example}/chat/lobby/").read().decode()
    assert f'["hypergen.websocket.open","ws://127.0.0.1:{example}/ws/chat/room/lobby/"]' in html


async def test_chat_messages_reach_everyone_in_the_room_and_are_validated(example):
    url, origin = f"ws://127.0.0.1:{example}/ws/chat/room/lobby/", f"http://127.0.0.1:{example}"
    async with connect(url, origin=origin) as ann, connect(url, origin=origin) as bob:
        await ann.send(json.dumps({"args": ["send_message", {"author": "ann", "text": "hi"}], "meta": {}}))
        expected = [
            ["hypergen.morph", "chat-status", "<span>Last message in #lobby was from ann</span>"],
            ["hypergen.append", "messages", "<li><b>ann</b>: hi</li>"],
            ["hypergen.morph", "typing", ""],
        ]
        assert await receive(ann) == expected
        assert await receive(bob) == expected
        await ann.send(json.dumps({"args": ["send_message", {"author": "", "text": "hi"}], "meta": {}}))
        error = await receive(ann)
        [problem] = error[0][1]["errors"]
        assert (problem["type"], problem["loc"]) == ("string_too_short", ["message", "author"])
        assert problem["msg"].startswith("String should have at least 1 character")  # pydantic 2.4: "characters".
        await ann.send(json.dumps({"args": ["my_stats"], "meta": {}}))
        assert await receive(ann) == [["hypergen.morph", "my-stats", "<span>You sent 1 messages here.</span>"]]


async def test_the_counter_is_shared(example):
    url, origin = f"ws://127.0.0.1:{example}/ws/chat/increment/", f"http://127.0.0.1:{example}"
    async with connect(url, origin=origin) as first, connect(url, origin=origin) as second:
        await first.send(json.dumps({"args": [], "meta": {}}))
        morph = await receive(first)
        assert morph == await receive(second)
        assert morph[0][:2] == ["hypergen.morph", "counter"]


def test_the_staff_page_sends_anonymous_users_to_the_login_page(example):
    response = urllib.request.urlopen(f"http://127.0.0.1:{example}/staff/")
    assert response.url.split("?")[0] == f"http://127.0.0.1:{example}/login/"


async def test_the_staff_room_refuses_anonymous_sockets_with_4403(example):
    from websockets.exceptions import ConnectionClosed

    async with connect(f"ws://127.0.0.1:{example}/ws/chat/staff_room/", origin=f"http://127.0.0.1:{example}") as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd.code == 4403
