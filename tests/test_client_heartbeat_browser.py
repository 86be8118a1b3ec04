"""client.js finds a dead path by itself: a heartbeat, the browser's offline event, final 4404.

Chromium talks to the example on daphne through ``tests.proxy.Proxy``, whose black hole keeps
the TCP connection open while swallowing every byte: what a laptop lid or a NAT timeout does.
Without a heartbeat the page would look online until the OS gave up, minutes later.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import ALL_OPEN, send_chat
from tests.servers import daphne

pytestmark = [pytest.mark.server, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent

OFFLINE = re.compile("hypergen-websocket-offline")
HEARTBEAT_MS = 500  # The default is 30 s; the page sets its own, as a test or a site may.
RECORD_CLOSES = """() => { window.closes = [];
    addEventListener("hypergen:websocket:close", e => window.closes.push(e.detail.reason)); }"""


@pytest.fixture
def open_page(open_page):
    """The suite's ``open_page``, with client.js beating every HEARTBEAT_MS (None: the default 30 s)."""

    def opener(url, heartbeat_ms=HEARTBEAT_MS, wait_open=True):
        beat = None if heartbeat_ms is None else f"window.hypergen_consumers_heartbeat_ms = {heartbeat_ms};"
        return open_page(url, wait_open=wait_open, init_script=beat)

    return opener


def test_a_black_holed_path_shows_offline_within_a_heartbeat_and_recovers(proxy, server_port, open_page):
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/heartbeat/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/heartbeat/")
    away.evaluate(RECORD_CLOSES)
    send_chat(away, "before", author="ann")
    expect(here.locator("#messages li")).to_have_text(["ann: before"])
    proxy.blackhole("down")  # The server's bytes vanish; the TCP connection stays open.
    # Bound: a few heartbeats (a loaded machine delays timers); without a heartbeat it never shows.
    expect(away.locator("html")).to_have_class(OFFLINE, timeout=10 * HEARTBEAT_MS)
    assert "heartbeat timeout" in away.evaluate("window.closes")
    send_chat(away, "while dead", author="ann")  # Queued, not lost.
    proxy.blackhole(None)
    proxy.cut()  # The old, given-up connection goes; the reconnect goes through.
    expect(away.locator("html")).not_to_have_class(OFFLINE, timeout=15_000)
    for page in (away, here):
        expect(page.locator("#messages li")).to_have_text(["ann: before", "ann: while dead"], timeout=15_000)


def test_a_swallowed_handshake_is_given_up_and_retried(proxy, open_page):
    page = open_page(f"http://127.0.0.1:{proxy.port}/chat/handshake/")
    page.evaluate(RECORD_CLOSES)
    proxy.blackhole("down")
    page.evaluate("Object.values(hypergen.websocket.WEBSOCKETS)[0].socket.close(4000)")  # Reconnect into the hole.
    page.wait_for_function("() => window.closes.includes('heartbeat timeout')", timeout=10 * HEARTBEAT_MS)
    proxy.blackhole(None)
    page.wait_for_function(ALL_OPEN, timeout=15_000)


def test_the_browser_going_offline_shows_offline_at_once(proxy, open_page):
    page = open_page(
        f"http://127.0.0.1:{proxy.port}/chat/offline-event/", heartbeat_ms=0
    )  # No heartbeat: the event alone.
    page.evaluate(RECORD_CLOSES)
    page.context.set_offline(True)
    expect(page.locator("html")).to_have_class(OFFLINE)
    assert "browser offline" in page.evaluate("window.closes")
    page.context.set_offline(False)
    expect(page.locator("html")).not_to_have_class(OFFLINE, timeout=15_000)


def test_the_heartbeat_is_answered_and_sends_no_message_event(server_port, open_page):
    page = open_page(f"http://127.0.0.1:{server_port}/chat/beating/", heartbeat_ms=1000)
    page.evaluate("""() => { window.messages = 0; window.sent = 0; window.errors = [];
        addEventListener("hypergen:websocket:error", e => window.errors.push(e.detail.code));
        addEventListener("hypergen:websocket:message", e => {
            if (JSON.stringify(e.detail.commands).includes("heartbeat")) window.messages++; });
        const connection = Object.values(hypergen.websocket.WEBSOCKETS)[0];
        const send = connection.socket.send.bind(connection.socket);
        connection.socket.send = text => { if (text.includes('"heartbeat"')) window.sent++; send(text); }; }""")
    page.wait_for_function("() => window.sent >= 3")
    page.wait_for_function(ALL_OPEN)
    assert page.evaluate("window.messages") == 0  # The replies are bookkeeping, not messages for the page.
    assert page.evaluate("window.errors") == []  # Answered as a heartbeat, not refused as a frame.
    assert page.evaluate("Object.values(hypergen.websocket.WEBSOCKETS)[0].unacknowledged.length") == 0


def test_4404_is_final_and_fires_notfound(server_port, open_page):
    page = open_page(f"http://127.0.0.1:{server_port}/chat/notfound/")
    chat_url = page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]")
    base = chat_url.split("/ws/chat/")[0]
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url.split("?")[0]))
    page.evaluate("""() => {
        addEventListener("hypergen:websocket:notfound", e => window.notfound.push({url: e.detail.url, code: e.detail.code}));
        addEventListener("hypergen:websocket:denied", e => window.denied.push(e.detail.url)); }""")
    for missing in [f"{base}/ws/chat/nobody/here/", f"{base}/ws/elsewhere/"]:  # In the namespace, and outside all.
        page.evaluate(
            """url => {
            window.notfound = []; window.denied = [];
            hypergen.websocket.open(url);
            window.missing = hypergen.websocket.WEBSOCKETS[url];
        }""",
            missing,
        )
        page.wait_for_function("() => window.notfound.length > 0")
        assert page.evaluate("window.notfound") == [{"url": missing, "code": 4404}]
        assert page.evaluate("window.denied") == []
        assert page.evaluate("[window.missing.closed, window.missing.timer]") == [True, None]
    assert page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)") == [chat_url]
    expect(page.locator("html")).not_to_have_class(OFFLINE)
    send_chat(page, "still here", author="ann")  # A round trip: time enough for a retry to show.
    expect(page.locator("#messages li")).to_have_text(["ann: still here"])
    assert opened == [f"{base}/ws/chat/nobody/here/", f"{base}/ws/elsewhere/"]  # One attempt each.


def test_the_examples_view_pushes_through_the_checked_class_bound_form(server_port, open_page):
    lobby = open_page(f"http://127.0.0.1:{server_port}/chat/lobby/")
    pusher = open_page(f"http://127.0.0.1:{server_port}/push/", wait_open=False)  # No socket: an @action.
    pusher.click("#push-message")
    expect(pusher.locator("#push-result")).to_have_text("Sent to #lobby.")
    expect(lobby.locator("#messages li").last).to_have_text("server: Hello from a view!")


@pytest.fixture(scope="module")
def test_project_port():
    with daphne("tests.asgi:application") as (port, _):
        yield port


def test_a_handler_longer_than_the_heartbeat_does_not_look_like_a_dead_path(test_project_port, browser):  # noqa: F811
    """The server handles one frame at a time, so the heartbeat waits behind the handler; the
    page gave its heartbeat in the URL and is answered every half of it while the handler runs."""
    import hypergen

    from tests.browser_fixtures import ALL_OPEN as OPEN

    context = browser.new_context()
    try:
        context.add_init_script(f"window.hypergen_consumers_heartbeat_ms = {HEARTBEAT_MS};")
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{test_project_port}/metrics/")  # Any page of the project's origin.
        page.set_content('<div id="slow"></div>')
        page.add_script_tag(path=str(Path(hypergen.__file__).parent / "static/hypergen/dist/hypergen.js"))
        page.add_script_tag(path=str(ROOT / "hypergen_consumers/static/hypergen_consumers/client.js"))
        page.evaluate(RECORD_CLOSES)
        url = f"ws://127.0.0.1:{test_project_port}/ws/tests/slow/"
        page.evaluate("url => hypergen.websocket.open(url)", url)
        page.wait_for_function(OPEN)
        page.evaluate(
            "url => hypergen.websocket.WEBSOCKETS[url].send(JSON.stringify({args: ['wait', 2], meta: {}}))", url
        )
        expect(page.locator("#slow")).to_have_text("waited 2.0", timeout=15_000)  # 4 heartbeats long.
        assert page.evaluate("window.closes") == []  # Never given up.
    finally:
        context.close()
