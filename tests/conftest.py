"""Fixtures: a fresh in-memory channel layer and a clean consumer registry for every test."""

import inspect

import pytest
from django.test import RequestFactory, override_settings
from hypergen.context import context

# Registered at import, before any test's registry snapshot, as a real project's would be.
import tests.consumers  # noqa: E402,F401
import tests.routing  # noqa: E402,F401  (mounts them, as ASGI_APPLICATION would at start-up)
from hypergen_consumers.routing import group_owners
from hypergen_consumers.wire.mistake_log import mistakes
from tests.support import registry_snapshot

#: The browser tests' fixtures (chromium, the example on daphne, a proxy), named by the tests that use them.
pytest_plugins = ["tests.browser_fixtures"]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A new InMemoryChannelLayer per test (changing the setting makes Channels rebuild it)."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


@pytest.fixture(autouse=True)
def consumer_registry():
    """Consumers defined inside a test are forgotten after it, so tests never collide on a route."""
    with registry_snapshot():
        yield


@pytest.fixture(autouse=True)
def fresh_group_owners():
    """Groups named by an earlier test's classes are not checked against this test's pushes."""
    group_owners.forget_all()
    yield


@pytest.fixture(autouse=True)
def fresh_mistake_log():
    """Each test starts with the whole log budget for client mistakes."""
    mistakes.reset()
    yield


@pytest.fixture
def page_request():
    """Render as if inside a liveview for http://testserver/ (what reverse() reads)."""
    request = RequestFactory().get("/")
    with context(request=request):
        yield request


def pytest_collection_modifyitems(items):
    """Sync handlers run through database_sync_to_async, which touches the database
    connection, so every test gets a (transactional) test database, as real handlers would."""
    for item in items:
        is_async = inspect.iscoroutinefunction(getattr(item, "function", None))
        if is_async and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True))
