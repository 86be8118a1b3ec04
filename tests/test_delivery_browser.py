"""Delivery guarantees in a real browser: chromium behind a proxy that cuts and black-holes.

A page talks to daphne through ``tests.proxy.Proxy``; another page talks to daphne directly.
"Once, in order" is checked by the exact list of chat lines, and "no duplicate arrived
later" by a marker message sent afterwards: it must come right after, with nothing between.
"""

import re
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import ALL_OPEN, send_chat
from tests.proxy import Proxy
from tests.servers import daphne, free_port, redis_server, run_script

pytestmark = [pytest.mark.server, pytest.mark.browser]

OFFLINE = re.compile("hypergen-websocket-offline")
# Chat messages not yet acknowledged (the room's typing indicator sends frames of its own too).
UNACKNOWLEDGED = (
    "() => Object.values(hypergen.websocket.WEBSOCKETS)[0].unacknowledged"
    ".filter(frame => frame.text.includes('\"send_message\"')).length"
)
UNACKNOWLEDGED_STATS = UNACKNOWLEDGED.replace("send_message", "my_stats")
RECORD_VALIDATION_ERRORS = """() => { window.validationErrors = [];
    addEventListener("hypergen:websocket:error", e => {
        if (e.detail.code === "validation_error") window.validationErrors.push(e.detail.message); }); }"""
PUSH_FIVE = (
    "import django; django.setup()\n"
    "from hypergen_consumers import consumer_command\n"
    "from chat.consumers import ChatRoom\n"
    "for n in range(5):\n"
    "    consumer_command(ChatRoom.group_name(room_name='redis'), [['hypergen.append', 'messages', f'<li>after restart {n}</li>']])\n"
)
REDIS_LAYERS = ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"]


def lines(page):
    return page.locator("#messages li")


def come_back(page, proxy):
    """The network returns: let connections through and tell the page it is online."""
    proxy.refuse(False)
    proxy.blackhole(None)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("html")).not_to_have_class(OFFLINE, timeout=15_000)


def away_while_five_messages(away, here, proxy, before_return=None):
    proxy.refuse(True)
    proxy.cut()
    expect(away.locator("html")).to_have_class(OFFLINE)
    sent = [f"bob: missed {n}" for n in range(5)]
    for n in range(5):
        send_chat(here, f"missed {n}", author="bob")
        expect(lines(here)).to_have_text(sent[: n + 1])
    if before_return is not None:
        before_return()
    come_back(away, proxy)
    expect(lines(away)).to_have_text(sent, timeout=15_000)
    send_chat(here, "marker", author="bob")
    for page in (away, here):
        expect(lines(page)).to_have_text([*sent, "bob: marker"])


def swallowed_up_arrives_once(away, here, proxy):
    before = lines(here).all_text_contents()
    proxy.blackhole("up")
    send_chat(away, "lost on the way up", author="ann")
    away.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 1")
    proxy.cut()
    come_back(away, proxy)
    expected = [*before, "ann: lost on the way up"]
    for page in (away, here):
        expect(lines(page)).to_have_text(expected, timeout=15_000)
    away.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 0")
    send_chat(here, "marker up", author="bob")
    for page in (away, here):
        expect(lines(page)).to_have_text([*expected, "bob: marker up"])


def answer_swallowed_runs_once(away, here, proxy):
    before = lines(here).all_text_contents()
    proxy.blackhole("down")
    send_chat(away, "answer lost", author="ann")
    expected = [*before, "ann: answer lost"]
    expect(lines(here)).to_have_text(expected)  # It ran; the away page heard nothing back.
    assert away.evaluate(f"({UNACKNOWLEDGED})()") == 1
    proxy.cut()
    come_back(away, proxy)  # client.js re-sends the frame; the server must not run it again.
    expect(lines(away)).to_have_text(expected, timeout=15_000)
    away.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 0")
    send_chat(here, "marker down", author="bob")
    for page in (away, here):
        expect(lines(page)).to_have_text([*expected, "bob: marker down"])


def lost_reply_is_shown_after_reconnecting(away, here, proxy, before_return=None):
    """My stats (broadcast=False) answers the sender alone: its answer was swallowed on the way
    down. The re-sent frame must not run again (a new run on the new connection would say 0
    messages) and the page must show the first run's answer."""
    before = lines(here).all_text_contents()
    send_chat(away, "counted", author="ann")  # This connection has now sent 1 message.
    expected = [*before, "ann: counted"]
    expect(lines(away)).to_have_text(expected)
    away.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 0")
    proxy.blackhole("down")
    away.click("#stats")
    send_chat(away, "after the stats", author="ann")
    expected.append("ann: after the stats")
    expect(lines(here)).to_have_text(expected)  # Frames run in order: My stats ran before it.
    assert away.evaluate(f"({UNACKNOWLEDGED_STATS})()") == 1
    expect(here.locator("#my-stats")).to_have_text("")  # Nothing went to the group...
    expect(away.locator("#my-stats")).to_have_text("")  # ...and the answer is swallowed.
    proxy.cut()
    if before_return is not None:
        before_return()
    come_back(away, proxy)
    expect(away.locator("#my-stats")).to_have_text("You sent 1 messages here.", timeout=15_000)
    away.wait_for_function(f"() => ({UNACKNOWLEDGED_STATS})() === 0")
    for page in (away, here):
        expect(lines(page)).to_have_text(expected)


def lost_error_is_shown_after_reconnecting(away, here, proxy, before_return=None):
    """A message without an author is a validation_error, sent to the sender alone: swallowed,
    then sent again after the reconnect; the message never runs."""
    before = lines(here).all_text_contents()
    away.evaluate(RECORD_VALIDATION_ERRORS)
    proxy.blackhole("down")
    send_chat(away, "no author", author="")
    send_chat(away, "after the error", author="ann")
    expected = [*before, "ann: after the error"]
    expect(lines(here)).to_have_text(expected)  # Frames run in order: the first one ran (and failed).
    assert away.evaluate(f"({UNACKNOWLEDGED})()") == 2
    proxy.cut()
    if before_return is not None:
        before_return()
    assert away.evaluate("window.validationErrors") == []
    come_back(away, proxy)
    away.wait_for_function("() => window.validationErrors.length === 1", timeout=15_000)
    assert "Invalid arguments for ChatRoom.send_message" in away.evaluate("window.validationErrors[0]")
    away.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 0")
    send_chat(here, "marker error", author="bob")
    for page in (away, here):
        expect(lines(page)).to_have_text([*expected, "bob: marker error"])
    assert away.evaluate("window.validationErrors.length") == 1


def test_a_page_away_while_its_group_gets_5_messages_shows_all_5_once_in_order(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/away/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/away/")
    away_while_five_messages(away, here, proxy)


def test_a_frame_swallowed_on_the_way_up_arrives_once(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/up/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/up/")
    swallowed_up_arrives_once(away, here, proxy)


def test_a_frame_whose_answer_was_swallowed_runs_once(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/down/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/down/")
    answer_swallowed_runs_once(away, here, proxy)


def test_a_reply_swallowed_on_the_way_down_runs_once_and_is_shown_after_reconnecting(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/reply/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/reply/")
    lost_reply_is_shown_after_reconnecting(away, here, proxy)


def test_an_error_frame_swallowed_on_the_way_down_is_shown_after_reconnecting(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/error/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/error/")
    lost_error_is_shown_after_reconnecting(away, here, proxy)


def test_a_reply_whose_command_fails_on_the_page_is_still_acknowledged(server_port, browser):  # noqa: F811
    """The ack is the last command of the reply's frame: a page command that throws before it
    must not leave the frame unacknowledged (it would be sent again after every reconnect)."""
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"http://127.0.0.1:{server_port}/chat/failing/")
    page.wait_for_function(ALL_OPEN)
    # My stats' reply is one hypergen.morph: make it throw, as a page's own broken command would.
    page.evaluate("""() => { window.morph = hypergen.morph;
        Object.defineProperty(hypergen, "morph", {value: () => { throw new Error("broken page"); }}); }""")
    page.click("#stats")
    page.wait_for_function(f"() => ({UNACKNOWLEDGED_STATS})() === 0")
    assert errors, "the reply's morph was expected to throw on the page"
    page.evaluate("""() => Object.defineProperty(hypergen, "morph", {value: window.morph})""")
    send_chat(page, "still talking", author="ann")
    expect(lines(page)).to_have_text(["ann: still talking"])
    page.wait_for_function(f"() => ({UNACKNOWLEDGED})() === 0")
    context.close()


def test_a_frame_the_page_cannot_read_still_acknowledges(server_port, open_page):  # noqa: F811
    """hypergen's reviver throws on some shapes (``["_", "element_value", x]`` with x not a
    list): the frame's page commands are lost, but its closing ack must still count."""
    page = open_page(f"http://127.0.0.1:{server_port}/chat/unreadable/")
    page.evaluate(
        "() => { window.errors = []; addEventListener('hypergen:websocket:error', e => errors.push(e.detail.code)); }"
    )
    left = page.evaluate("""() => {
        const connection = Object.values(hypergen.websocket.WEBSOCKETS)[0];
        const id = connection.nextFrameId++;
        connection.unacknowledged.push({id: id, text: "{}"});
        connection.receive(JSON.stringify([["hypergen.morph", "x", ["_", "element_value", 5]], ["hypergen.websocket.ack", id]]));
        return connection.unacknowledged.length;
    }""")
    assert left == 0
    assert page.evaluate("window.errors") == ["invalid_frame"]  # It was refused, and said so.


def test_a_page_away_while_its_extra_group_gets_3_frames_and_its_room_2_shows_all_5_once(server_port, proxy, open_page):  # noqa: F811
    """ChatRoom also joins "chat-news" (its ``groups``): a second stream, with its own positions.
    In memory one clock numbers both streams, so the page gets them in the order they were sent."""
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/news/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/news/")
    pusher = open_page(f"http://127.0.0.1:{server_port}/push/", wait_open=False)
    proxy.refuse(True)
    proxy.cut()
    expect(away.locator("html")).to_have_class(OFFLINE)
    expected = []
    for n in range(5):
        if n % 2 == 0:
            pusher.click("#push-news")
            expect(pusher.locator("#push-result")).to_contain_text("Sent news")
            expected.append(re.compile(r"news \d+"))
        else:
            send_chat(here, f"room {n}", author="bob")
            expected.append(f"bob: room {n}")
        expect(lines(here)).to_have_text(expected)
    sent = lines(here).all_text_contents()
    come_back(away, proxy)
    expect(lines(away)).to_have_text(sent, timeout=15_000)
    send_chat(here, "marker", author="bob")  # Nothing more (no duplicate) came before it.
    for page in (away, here):
        expect(lines(page)).to_have_text([*sent, "bob: marker"])
    positions = away.evaluate("() => Object.values(hypergen.websocket.WEBSOCKETS)[0].positions")
    assert sorted(positions) == ["0", "1"]  # Two streams, by index: no group name reaches the page.


def test_a_page_away_longer_than_the_window_is_told_to_resync(server_port, proxy, open_page):  # noqa: F811
    """The example's ChatRoom keeps 200 frames: 201 while away is past the window."""
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/resync/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/resync/")
    away.evaluate("""() => { window.resyncs = [];
        addEventListener("hypergen:websocket:resync", e => { window.resyncs.push(e.detail.reload); e.preventDefault(); }); }""")
    proxy.refuse(True)
    proxy.cut()
    here.evaluate("""() => { for (let n = 0; n < 201; n++) hypergen.websocket.WEBSOCKETS[Object.keys(hypergen.websocket.WEBSOCKETS)[0]]
        .send(JSON.stringify({args: ["send_message", {author: "bob", text: "n" + n}], meta: {}})); }""")
    expect(lines(here)).to_have_count(201, timeout=30_000)
    come_back(away, proxy)
    away.wait_for_function("() => window.resyncs.length === 1")
    assert away.evaluate("window.resyncs") == [True]  # No on_resync: the default is a reload.
    expect(lines(away)).to_have_count(0)  # Nothing replayed frame by frame past the window.


@pytest.mark.parametrize("layer", REDIS_LAYERS, ids=["core", "pubsub"])
def test_across_two_processes_and_a_redis_restart(layer, example_db, open_page):  # noqa: F811
    redis_port = free_port()
    env = {**example_db, "REDIS_URL": f"redis://127.0.0.1:{redis_port}", "REDIS_LAYER": layer}
    with ExitStack() as first_redis:
        first_redis.enter_context(redis_server(redis_port))
        with (
            daphne("example.asgi:application", settings="example.settings", env=env) as (port_a, _),
            daphne("example.asgi:application", settings="example.settings", env=env) as (port_b, _),
            Proxy(port_a) as proxy,
        ):
            away = open_page(f"http://127.0.0.1:{proxy.port}/chat/redis/")
            here = open_page(f"http://127.0.0.1:{port_b}/chat/redis/")
            # Away on process A, back on process B: B replays from the stream in Redis.
            away_while_five_messages(away, here, proxy, before_return=lambda: proxy.retarget(port_b))
            proxy.retarget(port_a)
            swallowed_up_arrives_once(away, here, proxy)  # Re-sent to A after running on B...
            answer_swallowed_runs_once(away, here, proxy)  # ...and not run twice across processes.
            # Sender-only answers: run on A, swallowed, sent again by B from Redis; then B to A.
            lost_reply_is_shown_after_reconnecting(away, here, proxy, before_return=lambda: proxy.retarget(port_b))
            lost_error_is_shown_after_reconnecting(away, here, proxy, before_return=lambda: proxy.retarget(port_a))

            before = lines(here).all_text_contents()
            proxy.refuse(True)
            proxy.cut()
            first_redis.close()  # Redis restarts without its data while the page is away.
            with redis_server(redis_port):
                # A third process pushes 5 frames; each push that reports success is in the window.
                result = run_script(PUSH_FIVE, {**env, "DJANGO_SETTINGS_MODULE": "example.settings"})
                assert result.returncode == 0, result.stderr
                sent = [f"after restart {n}" for n in range(5)]
                come_back(away, proxy)
                expect(lines(away)).to_have_text([*before, *sent], timeout=15_000)
                send_chat(away, "marker", author="ann")  # Through A: the away page hears it once.
                expect(lines(away)).to_have_text([*before, *sent, "ann: marker"], timeout=15_000)
