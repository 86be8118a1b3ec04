"""The live dashboard in chromium: two daphne processes of the example over a real redis-server.

A page that connects on process B shows up on the dashboard served by A; closing a user's
sockets from A closes them on both processes (4401); a user who is not staff gets no page, no
socket and no data, even when crafting the dashboard's own frames.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import ALL_OPEN
from tests.servers import daphne, example_env, migrate_example, redis_server

pytestmark = [pytest.mark.server, pytest.mark.browser]

RECORD = """() => {
    window.recorded = [];
    for (const name of ["denied", "message"]) {
        window.addEventListener("hypergen:websocket:" + name, e => window.recorded.push({name, code: e.detail.code || null, url: e.detail.url}));
    }
}"""


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Processes A and B of the example, one database, one Redis: (base URL, pid) each."""
    env = example_env(tmp_path_factory.mktemp("dashboard") / "db.sqlite3")
    migrate_example(env)
    with redis_server() as redis_port:
        env = {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}"}
        with (
            daphne("example.asgi:application", settings="example.settings", env=env) as (port_a, a),
            daphne("example.asgi:application", settings="example.settings", env=env) as (port_b, b),
        ):
            yield (f"http://127.0.0.1:{port_a}", a.pid), (f"http://127.0.0.1:{port_b}", b.pid)


@pytest.fixture
def logged_in(browser):  # noqa: F811
    """Pages in a fresh browser context per user, logged in through the example's login page."""
    contexts, errors = [], []

    def page_for(base, username, next_path):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/login/?next={next_path}")
        page.fill("#username", username)
        page.fill("#password", username)
        page.click("#login")
        expect(page).to_have_url(f"{base}{next_path}")
        return page

    yield page_for
    for context in contexts:
        context.close()
    assert errors == [], f"uncaught page errors: {errors}"


def test_a_page_on_b_shows_on_a_and_closing_the_user_closes_both(two_processes, logged_in):
    (a, pid_a), (b, pid_b) = two_processes
    dashboard = logged_in(a, "admin", "/consumers/")
    expect(dashboard.locator(f'.hc-process[data-pid="{pid_a}"]')).to_have_count(1)
    friend_on_b = logged_in(b, "friend", "/chat/lobby/")
    friend_on_b.wait_for_function(ALL_OPEN)
    friend_on_a = friend_on_b.context.new_page()
    friend_on_a.goto(f"{a}/chat/lobby/")
    friend_on_a.wait_for_function(ALL_OPEN)
    friend_rows = dashboard.locator('.hc-connection[data-user="friend"]')
    expect(friend_rows.and_(dashboard.locator(f'[data-pid="{pid_b}"]'))).to_have_count(1, timeout=3000)
    expect(friend_rows.and_(dashboard.locator(f'[data-pid="{pid_a}"]'))).to_have_count(1)
    expect(dashboard.locator(f'.hc-process[data-pid="{pid_b}"]')).to_have_count(1)
    expect(dashboard.locator('.hc-consumer[data-consumer="ChatRoom"]')).to_be_visible()
    expect(dashboard.locator(".hc-spark polyline").first).to_be_attached()
    for page in (friend_on_a, friend_on_b):
        page.evaluate(RECORD)
    friend_rows.first.locator(".hc-close-user").click()
    for page in (friend_on_a, friend_on_b):
        page.wait_for_function("() => window.recorded.some(e => e.name === 'denied')")
        assert [e["code"] for e in page.evaluate("window.recorded") if e["name"] == "denied"] == [4401]
    expect(friend_rows).to_have_count(0)
    expect(dashboard.locator(".hc-event-operation")).to_contain_text(["closed every socket of friend"])
    expect(dashboard.locator(".hc-event-operation .hc-event-user")).to_contain_text(["by admin"])


def test_someone_who_is_not_staff_gets_no_page_no_socket_and_no_data(two_processes, logged_in, browser):  # noqa: F811
    (a, _), _ = two_processes
    anonymous = browser.new_context().new_page()
    anonymous.goto(f"{a}/consumers/")
    expect(anonymous).to_have_url(re.compile(r"/login/\?next=/consumers/"))
    anonymous.context.close()
    demo = logged_in(a, "demo", "/chat/lobby/")  # Logged in, not staff.
    assert demo.request.get(f"{a}/consumers/").status == 403
    demo.wait_for_function(ALL_OPEN)
    demo.evaluate(RECORD)
    dashboard_url = a.replace("http://", "ws://") + "/ws/hypergen_consumers/dashboard/"
    demo.evaluate("url => hypergen.websocket.open(url)", dashboard_url)
    demo.evaluate(
        """url => {  // Crafted frames: the dashboard's own render and an operation, queued at once.
        hypergen.websocket.WEBSOCKETS[url].send(JSON.stringify({args: ["refresh"], meta: {}}));
        hypergen.websocket.WEBSOCKETS[url].send(JSON.stringify({args: ["close_user", 1], meta: {}}));
    }""",
        dashboard_url,
    )
    demo.wait_for_function("url => window.recorded.some(e => e.name === 'denied' && e.url === url)", arg=dashboard_url)
    demo.wait_for_timeout(2000)  # Snapshots go out every 1.5 s: none may reach this page.
    from_dashboard = [e for e in demo.evaluate("window.recorded") if e["url"] == dashboard_url]
    assert from_dashboard == [{"name": "denied", "code": 4403, "url": dashboard_url}]
