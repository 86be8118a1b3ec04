"""System checks a new project meets first: hypergen's context middleware."""

from django.core import checks
from django.test import override_settings

from hypergen_consumers.declaring.checks import check_context_middleware


def test_a_project_with_the_context_middleware_passes():
    assert check_context_middleware() == []


@override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"])
def test_a_project_without_the_context_middleware_is_told_what_to_add():
    (warning,) = check_context_middleware()
    assert warning.id == "hypergen_consumers.W002"
    assert warning.level == checks.WARNING
    assert "Add 'hypergen.context.context_middleware' to MIDDLEWARE" in warning.hint
    assert warning in checks.run_checks()  # Registered: manage.py check reports it.
