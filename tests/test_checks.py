"""System checks a new project meets first: hypergen's context middleware, a channel layer."""

from django.core import checks
from django.test import override_settings

from hypergen_consumers.declaring.checks import check_channel_layers, check_context_middleware


def test_a_project_with_the_context_middleware_passes():
    assert check_context_middleware() == []


@override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"])
def test_a_project_without_the_context_middleware_is_told_what_to_add():
    (warning,) = check_context_middleware()
    assert warning.id == "hypergen_consumers.W002"
    assert warning.level == checks.WARNING
    assert "Add 'hypergen.context.context_middleware' to MIDDLEWARE" in warning.hint
    assert warning in checks.run_checks()  # Registered: manage.py check reports it.


def test_a_project_with_its_consumers_channel_layer_passes():
    assert check_channel_layers() == []


@override_settings(CHANNEL_LAYERS={})
def test_a_project_without_a_channel_layer_is_told_what_to_set_before_anyone_connects():
    """Channels' default is no layer at all: every handshake of a consumer would be an HTTP 500."""
    (warning,) = check_channel_layers()
    assert warning.id == "hypergen_consumers.W004"
    assert "CHANNEL_LAYERS has no 'default' layer" in warning.msg
    assert "Big, Blocker, Crowd and " in warning.msg  # The suite's consumers (tests/consumers.py), a few named.
    assert "channels.layers.InMemoryChannelLayer" in warning.hint
    assert warning in checks.run_checks()  # Registered: manage.py check reports it.
