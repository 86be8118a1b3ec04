"""The browser tests' shared parts: the example on daphne, a proxy in front of it, chromium.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``), so a browser test
names the fixtures it uses (``browser``, ``open_page``, ``server_port``, ``proxy``, ...) without
importing them; helpers (``ALL_OPEN``, ``send_chat``, ``example_on_restartable_redis``) are imported.
Module-scoped fixtures are still one per test module.
"""

import contextlib

import pytest
from playwright.sync_api import sync_playwright

from tests.proxy import Proxy
from tests.servers import daphne, example_env, migrate_example, restartable_redis

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_OPEN = "() => Object.values(hypergen.websocket.WEBSOCKETS).length > 0 && Object.values(hypergen.websocket.WEBSOCKETS).every(c => c.isOpen())"


@pytest.fixture(scope="module")
def example_db(tmp_path_factory):
    env = example_env(tmp_path_factory.mktemp("browser") / "db.sqlite3")
    migrate_example(env)
    return env


@pytest.fixture(scope="module")
def server_port(example_db):
    """The example site on a daphne of this module's own (in-memory layer)."""
    with daphne("example.asgi:application", settings="example.settings", env=example_db) as (port, _):
        yield port


@pytest.fixture(scope="module")
def server(server_port):
    return f"http://127.0.0.1:{server_port}"


@pytest.fixture
def proxy(server_port):
    """A loopback proxy in front of the example that a test can cut or turn into a black hole."""
    with Proxy(server_port) as proxy:
        yield proxy


@contextlib.contextmanager
def example_on_restartable_redis(example_db):
    """The example on one daphne over a redis-server of its own; yields ``(port, stop, start)``:
    Redis goes away (restarting empty, as one without persistence does) and comes back."""
    with restartable_redis() as redis:
        env = {**example_db, "REDIS_URL": redis.url}
        with daphne("example.asgi:application", settings="example.settings", env=env) as (port, _):
            yield port, redis.stop, redis.start


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Open pages in fresh contexts; fail the test on any uncaught page error."""
    errors, contexts = [], []

    def opener(url, wait_open=True, init_script=None):
        context = browser.new_context()
        contexts.append(context)
        if init_script is not None:  # Runs before the page's own scripts (say, a heartbeat period).
            context.add_init_script(init_script)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        if wait_open:
            page.wait_for_function(ALL_OPEN)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert errors == [], f"uncaught page errors: {errors}"


def send_chat(page, text, author=None):
    if author is not None:
        page.fill("#author", author)
    page.fill("#text", text)
    page.click("#send")
