"""client.js finds a dead path by itself: a heartbeat, the browser's offline event, final 4404.

Chromium talks to the example on daphne through ``tests.proxy.Proxy``, whose black hole keeps
the TCP connection open while swallowing every byte: what a laptop lid or a NAT timeout does.
Without a heartbeat the page would look online until the OS gave up, minutes later.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.proxy import Proxy
from tests.servers import daphne
from tests.test_browser import ALL_OPEN, browser, example_db, send_chat  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.server, pytest.mark.browser]

OFFLINE = re.compile("hypergen-websocket-offline")
HEARTBEAT_MS = 500  # The default is 30 s; the page sets its own, as a test or a site may.
RECORD_CLOSES = """() => { window.closes = [];
    addEventListener("hypergen:websocket:close", e => window.closes.push(e.detail.reason)); }"""


@pytest.fixture(scope="module")
def server_port(example_db):  # noqa: F811
    with daphne("example.asgi:application", settings="example.settings", env=example_db) as (port, _):
        yield port


@pytest.fixture
def proxy(server_port):
    with Proxy(server_port) as proxy:
        yield proxy


@pytest.fixture
def open_page(browser):  # noqa: F811
    """A page whose client.js beats every HEARTBEAT_MS; fails the test on any uncaught page error."""
    errors, contexts = [], []

    def opener(url, heartbeat_ms=HEARTBEAT_MS):
        context = browser.new_context()
        contexts.append(context)
        if heartbeat_ms is not None:
            context.add_init_script(f"window.hypergen_consumers_heartbeat_ms = {heartbeat_ms};")
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_function(ALL_OPEN)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert errors == [], f"uncaught page errors: {errors}"


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
    page = open_page(f"http://127.0.0.1:{proxy.port}/chat/offline-event/", heartbeat_ms=0)  # No heartbeat: the event alone.
    page.evaluate(RECORD_CLOSES)
    page.context.set_offline(True)
    expect(page.locator("html")).to_have_class(OFFLINE)
    assert "browser offline" in page.evaluate("window.closes")
    page.context.set_offline(False)
    expect(page.locator("html")).not_to_have_class(OFFLINE, timeout=15_000)


def test_the_heartbeat_is_answered_and_sends_no_message_event(server_port, open_page):
    page = open_page(f"http://127.0.0.1:{server_port}/chat/beating/", heartbeat_ms=100)
    page.evaluate("""() => { window.messages = 0; window.sent = 0; window.errors = [];
        addEventListener("hypergen:websocket:error", e => window.errors.push(e.detail.code));
        addEventListener("hypergen:websocket:message", e => {
            if (JSON.stringify(e.detail.commands).includes("heartbeat")) window.messages++; });
        const connection = Object.values(hypergen.websocket.WEBSOCKETS)[0];
        const send = connection.socket.send.bind(connection.socket);
        connection.socket.send = text => { if (text.includes('"heartbeat"')) window.sent++; send(text); }; }""")
    page.wait_for_function("() => window.sent >= 5")
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
        page.evaluate("""url => {
            window.notfound = []; window.denied = [];
            hypergen.websocket.open(url);
            window.missing = hypergen.websocket.WEBSOCKETS[url];
        }""", missing)
        page.wait_for_function("() => window.notfound.length > 0")
        assert page.evaluate("window.notfound") == [{"url": missing, "code": 4404}]
        assert page.evaluate("window.denied") == []
        assert page.evaluate("[window.missing.closed, window.missing.timer]") == [True, None]
    assert page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)") == [chat_url]
    expect(page.locator("html")).not_to_have_class(OFFLINE)
    send_chat(page, "still here", author="ann")  # A round trip: time enough for a retry to show.
    expect(page.locator("#messages li")).to_have_text(["ann: still here"])
    assert opened == [f"{base}/ws/chat/nobody/here/", f"{base}/ws/elsewhere/"]  # One attempt each.
