"""client.js in a real browser: Playwright driving Debian's chromium against the example on daphne."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import ALL_OPEN, send_chat
from tests.servers import daphne, free_port

pytestmark = [pytest.mark.server, pytest.mark.browser]

RECORD_EVENTS = """() => {
    window.recorded = [];
    for (const name of ["open", "close", "error", "message"]) {
        window.addEventListener("hypergen:websocket:" + name, e => window.recorded.push({name, url: e.detail.url, code: e.detail.code}));
    }
}"""


def test_a_chat_message_typed_in_one_page_appears_in_both(server, open_page):
    first, second = open_page(f"{server}/chat/browser-room/"), open_page(f"{server}/chat/browser-room/")
    elsewhere = open_page(f"{server}/chat/other-room/")
    send_chat(first, "hello from first", author="ann")
    for page in (first, second):
        expect(page.locator("#messages li")).to_have_text(["ann: hello from first"])
        expect(page.locator("#chat-status")).to_have_text("Last message in #browser-room was from ann")
    send_chat(second, "and back", author="bob")
    expect(first.locator("#messages li")).to_have_text(["ann: hello from first", "bob: and back"])
    expect(elsewhere.locator("#messages li")).to_have_count(0)


def test_the_counter_increments_on_every_open_page(server, open_page):
    pages = [open_page(f"{server}/counter/") for _ in range(3)]
    for clicks in range(1, 4):  # This module's server counts from zero; only this test clicks.
        pages[clicks % 3].click("#increment")
        for page in pages:
            expect(page.locator("#counter")).to_have_text(f"Clicked {clicks} times")


def test_a_validation_error_reaches_the_error_event_and_the_page_keeps_working(server, open_page):
    page = open_page(f"{server}/chat/errors/")
    page.evaluate(RECORD_EVENTS)
    send_chat(page, "nobody wrote this", author="")
    page.wait_for_function("() => window.recorded.some(e => e.name === 'error')")
    errors = page.evaluate("window.recorded.filter(e => e.name === 'error')")
    assert errors == [
        {
            "name": "error",
            "url": page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]"),
            "code": "validation_error",
        }
    ]
    expect(page.locator("#messages li")).to_have_count(0)
    send_chat(page, "now it works", author="ann")
    expect(page.locator("#messages li")).to_have_text(["ann: now it works"])


def test_loading_the_client_twice_and_opening_twice_keep_one_socket(server, open_page):
    page = open_page(f"{server}/chat/twice/")
    url = page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]")
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.add_script_tag(url="/static/hypergen_consumers/client.js")
    page.evaluate("url => hypergen.websocket.open(url)", url)
    assert page.evaluate("hypergen.websocket.isHypergenConsumersClient") is True
    assert page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS).length") == 1
    send_chat(page, "still one socket", author="ann")
    expect(page.locator("#messages li")).to_have_text(["ann: still one socket"])
    assert sockets == []


def test_the_staff_room_needs_a_login_and_then_works(server, open_page):
    page = open_page(f"{server}/staff/", wait_open=False)
    expect(page).to_have_url(re.compile(r"/login/"))
    page.click("#login")  # The demo account is filled in.
    expect(page).to_have_url(f"{server}/staff/")
    page.wait_for_function(ALL_OPEN)
    page.fill("#announcement", "coffee is ready")
    page.click("#announce")
    expect(page.locator("#staff-log")).to_have_text("demo announced: coffee is ready")


@pytest.fixture
def restartable(example_db):
    """A daphne on a fixed port that a test can stop and start again."""
    port = free_port()
    state = {"server": None}

    def start():
        state["server"] = daphne("example.asgi:application", settings="example.settings", env=example_db, port=port)
        state["server"].__enter__()

    def stop():
        state["server"].__exit__(None, None, None)
        state["server"] = None

    start()
    yield f"http://127.0.0.1:{port}", start, stop
    if state["server"] is not None:
        stop()


def test_offline_messages_are_queued_and_sent_after_the_server_returns(restartable, open_page):
    base, start, stop = restartable
    page = open_page(f"{base}/chat/outage/")
    html = page.locator("html")
    expect(html).not_to_have_class(re.compile("hypergen-websocket-offline"))
    stop()
    expect(html).to_have_class(re.compile("hypergen-websocket-offline"))
    expect(page.locator(".offline-banner")).to_be_visible()
    send_chat(page, "sent while offline", author="ann")
    assert page.evaluate("Object.values(hypergen.websocket.WEBSOCKETS)[0].queue.length") == 1
    start()
    expect(html).not_to_have_class(re.compile("hypergen-websocket-offline"), timeout=30_000)
    expect(page.locator("#messages li")).to_have_text(["ann: sent while offline"], timeout=10_000)


def test_close_stops_reconnecting_for_good(restartable, open_page):
    base, start, stop = restartable
    page = open_page(f"{base}/chat/closing/")
    chat_url = page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]")
    control_url = chat_url.replace("/room/closing/", "/room/control/")
    page.evaluate("url => hypergen.websocket.open(url)", control_url)  # Keeps reconnecting: the control.
    page.wait_for_function(ALL_OPEN)
    page.evaluate("url => hypergen.websocket.close(url)", chat_url)
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    stop()
    start()
    page.wait_for_function(ALL_OPEN, timeout=30_000)  # The control socket came back...
    # ...and the closed URL never tried again (client.js adds its socket id to the query).
    assert opened and {url.split("?")[0] for url in opened} == {control_url}
    assert page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)") == [control_url]
    expect(page.locator("html")).not_to_have_class(re.compile("hypergen-websocket-offline"))


def test_coming_back_online_or_visible_reconnects_at_once(server, open_page):
    page = open_page(f"{server}/chat/online/")
    # This connection's retries wait an hour, so only the event can open the socket again.
    page.evaluate("""() => { const c = Object.values(hypergen.websocket.WEBSOCKETS)[0];
        c.scheduleReconnect = function () {
            if (this.closed || this.timer !== null) return;
            this.timer = setTimeout(() => { this.timer = null; this.connect(); }, 3600000);
        }; }""")
    for event in [
        "window.dispatchEvent(new Event('online'))",
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))",
    ]:
        page.wait_for_function(ALL_OPEN, timeout=30_000)
        page.evaluate("Object.values(hypergen.websocket.WEBSOCKETS)[0].socket.close(4000)")
        page.wait_for_function(
            "() => { const c = Object.values(hypergen.websocket.WEBSOCKETS)[0];"
            " return c.socket === null && c.timer !== null; }",
            timeout=30_000,
        )
        created = page.evaluate(
            "() => { " + event + "; return Object.values(hypergen.websocket.WEBSOCKETS)[0].socket !== null; }"
        )
        assert created is True
        page.wait_for_function(ALL_OPEN, timeout=30_000)


def test_the_offline_queue_is_bounded_and_warns(restartable, open_page):
    base, start, stop = restartable
    page = open_page(f"{base}/chat/bounded/")
    warnings = []
    page.on("console", lambda message: message.type == "warning" and warnings.append(message.text))
    stop()
    expect(page.locator("html")).to_have_class(re.compile("hypergen-websocket-offline"))
    length = page.evaluate("""() => {
        const connection = Object.values(hypergen.websocket.WEBSOCKETS)[0];
        for (let i = 0; i < 1001; i++) connection.send(JSON.stringify({args: [i], meta: {}}));
        return [connection.queue.length, JSON.parse(connection.queue[0]).args[0]];
    }""")
    assert length == [1000, 1]  # The oldest (0) was dropped.
    assert any("send queue for" in warning and "dropped the oldest message" in warning for warning in warnings)


def test_every_frame_fires_a_message_event_with_its_url(server, open_page):
    page = open_page(f"{server}/chat/events/")
    page.evaluate(RECORD_EVENTS)
    send_chat(page, "hello", author="ann")
    page.wait_for_function("() => window.recorded.some(e => e.name === 'message')")
    url = page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]")
    # The chat room also renders who is online (presence), so the page may get more than one
    # frame: every one of them carries the socket's URL.
    urls = page.evaluate("window.recorded.filter(e => e.name === 'message').map(e => e.url)")
    assert urls and set(urls) == {url}


def test_a_refused_socket_is_final_fires_denied_and_runs_nothing(server, open_page):
    page = open_page(f"{server}/chat/denied/")
    chat_url = page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)[0]")
    staff_url = chat_url.split("/ws/chat/")[0] + "/ws/chat/staff_room/"
    opened, warnings = [], []
    page.on("websocket", lambda ws: opened.append(ws.url))
    page.on("console", lambda message: message.type == "warning" and warnings.append(message.text))
    page.evaluate(
        """url => {
        window.denied = [];
        window.closes = [];  // Every end of a socket, with its code: what a failure below reports.
        window.addEventListener("hypergen:websocket:denied", e => window.denied.push({url: e.detail.url, code: e.detail.code}));
        window.addEventListener("hypergen:websocket:close", e => window.closes.push(e.detail));
        hypergen.websocket.open(url);
        window.refused = hypergen.websocket.WEBSOCKETS[url];
        window.refused.send(JSON.stringify({args: ["announce", "intruder"], meta: {}}));  // Sent by an anonymous page.
    }""",
        staff_url,
    )
    page.wait_for_function("() => window.denied.length > 0")
    assert page.evaluate("window.denied") == [{"url": staff_url, "code": 4403}]
    assert page.evaluate("Object.keys(hypergen.websocket.WEBSOCKETS)") == [chat_url]
    assert page.evaluate("[window.refused.closed, window.refused.timer, window.refused.queue.length]") == [
        True,
        None,
        0,
    ]
    expect(page.locator("html")).not_to_have_class(re.compile("hypergen-websocket-offline"))
    send_chat(page, "the page still works", author="ann")  # A round trip: time enough for a retry to show.
    expect(page.locator("#messages li")).to_have_text(["ann: the page still works"])
    # One attempt, never retried (query: client.js's socket id). CI saw two once (not reproduced
    # since): the ends of the sockets say with which close code the first one ended.
    assert [url.split("?")[0] for url in opened] == [staff_url], page.evaluate("window.closes")
    assert warnings == [f"hypergen_consumers: {staff_url} was refused (close code 4403); dropped 1 queued message(s)."]

    staff = open_page(f"{server}/staff/", wait_open=False)  # The intruder's announcement never ran.
    staff.click("#login")
    staff.wait_for_function(ALL_OPEN)
    staff.fill("#announcement", "only this")
    staff.click("#announce")
    expect(staff.locator("#staff-log")).to_have_text("demo announced: only this")


def test_reconnecting_starts_fast_and_is_capped_at_five_seconds(restartable, open_page):
    base, start, stop = restartable
    page = open_page(f"{base}/chat/backoff/")
    ceilings = page.evaluate("[0, 1, 2, 5, 30].map(n => hypergen.websocket.backoffCeiling(n))")
    assert ceilings == [250, 500, 1000, 5000, 5000]
    stop()
    page.wait_for_function("() => Object.values(hypergen.websocket.WEBSOCKETS)[0].delays.length >= 4", timeout=30_000)
    delays = page.evaluate("Object.values(hypergen.websocket.WEBSOCKETS)[0].delays")
    assert delays[0] < 250 and all(0 <= delay < ceiling for delay, ceiling in zip(delays, ceilings[:3] + [2000]))
    start()
    page.wait_for_function(ALL_OPEN, timeout=30_000)


def log_in(page, server, username):
    page.goto(f"{server}/login/")
    page.fill("#username", username)
    page.fill("#password", username if username != "demo" else "demo")
    with page.expect_navigation():  # demo lands in the staff room, friend in the lobby.
        page.click("#login")
    expect(page).not_to_have_url(re.compile(r"/login/"))  # Not bounced back (friend may not enter /staff/).
    assert any(cookie["name"] == "sessionid" for cookie in page.context.cookies()), f"{username} is not logged in"


def test_whos_online_typing_and_a_private_notice_with_two_users(server, open_page, browser):
    room = f"{server}/chat/presence-room/"
    pages = {}
    for username in ("demo", "friend"):
        page = open_page(f"{server}/login/", wait_open=False)
        log_in(page, server, username)
        page.goto(room)
        page.wait_for_function(ALL_OPEN)
        pages[username] = page
    demo, friend = pages["demo"], pages["friend"]
    for page in (demo, friend):  # Who's online, on both pages.
        expect(page.locator("#online li")).to_have_text(["demo", "friend"])

    second_tab = demo.context.new_page()  # Two tabs of one user are one entry.
    second_tab.goto(room)
    expect(friend.locator("#online li")).to_have_text(["demo (2 tabs)", "friend"])
    second_tab.close()
    expect(friend.locator("#online li")).to_have_text(["demo", "friend"])

    demo.type("#text", "hel")  # The typing indicator reaches the other user, not the typist.
    expect(friend.locator("#typing")).to_have_text("demo is typing…")
    expect(demo.locator("#typing")).to_have_text("")
    send_chat(demo, "hello")
    expect(friend.locator("#typing")).to_have_text("")

    sender = open_page(f"{server}/notice/", wait_open=False)  # An anonymous visitor pushes to friend.
    sender.fill("#notice-user", "friend")
    sender.fill("#notice-text", "for your eyes only")
    sender.click("#send-notice")
    expect(sender.locator("#notice-result")).to_have_text("Sent to friend's open pages.")
    expect(friend.locator("#notices .notice")).to_have_text(["anonymous says: for your eyes only"])
    expect(demo.locator("#online li")).to_have_text(["demo", "friend"])  # A round trip later...
    expect(demo.locator("#notices .notice")).to_have_count(0)  # ...demo got nothing.
    sender.close()


def test_the_nav_links_the_dashboard_for_staff_only(server, open_page):
    """The example's nav shows who is signed in; only staff (admin) get the dashboard link."""
    dashboard_link = ".site-nav a[href='/consumers/']"
    anonymous = open_page(f"{server}/", wait_open=False)
    expect(anonymous.locator(".site-nav .who")).to_contain_text("Log in")
    expect(anonymous.locator(dashboard_link)).to_have_count(0)
    for username, staff in (("demo", False), ("admin", True)):
        page = open_page(f"{server}/login/", wait_open=False)
        log_in(page, server, username)
        page.goto(f"{server}/")
        expect(page.locator(".site-nav .who")).to_contain_text(username)
        expect(page.locator(dashboard_link)).to_have_count(1 if staff else 0)
    page.click(dashboard_link)  # admin's: the link opens the live dashboard.
    expect(page.locator("#hc-dashboard-page")).to_be_visible()
