"""System checks a new project meets first: hypergen's context middleware, a channel layer, perms."""

import pytest
from django.contrib.auth.models import Permission
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, consumer, handler
from hypergen_consumers.dashboard.consumer import OPERATE_PERM, DashboardConsumer
from hypergen_consumers.declaring.checks import check_channel_layers, check_context_middleware, check_perms_exist
from hypergen_consumers.routing import registry


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


def define_perm_consumers():
    """One consumer per way to name a perm: a typo, an app that does not exist, right ones."""

    class Typo(HypergenConsumer):
        perm = "auth.chnage_user"
        path = "perm-typo/"

        @handler
        def read(self, request): ...

    class Handlers(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "perm-handlers/"

        @handler(perm="nosuchapp.moderate")
        def moderate(self, request): ...

        @handler(perm=["auth.change_user", "auth.delete_usr"], any_perm=True)
        def either(self, request): ...

        @handler(perm="auth.change_user")
        def right(self, request): ...

        @handler
        def open(self, request): ...

    @consumer(perm=["auth.view_user", "auth.add_group"], path="perm-fine/")
    def fine(connection, request): ...

    return Typo, Handlers, fine


def perm_warnings(*classes):
    return [(w.obj.__name__, w.msg, w.hint) for w in check_perms_exist(databases=["default"]) if w.obj in classes]


@pytest.mark.django_db
def test_a_perm_no_permission_matches_is_named_with_its_consumer_and_handler():
    """A typo in perm passes every other check, then refuses every user at runtime."""
    typo, handlers, fine = define_perm_consumers()
    (in_handler, one_of_two, in_class) = perm_warnings(typo, handlers, fine)  # By qualname.
    assert in_class[:2] == (
        "Typo",
        "The perm 'auth.chnage_user' of consumer Typo matches no Permission in the database, so every user "
        "but superusers is refused at runtime.",
    )
    assert in_class[2].startswith("Correct it (did you mean 'auth.change_user'?): a perm is 'app_label.codename'")
    assert "add it to a model's Meta.permissions and run migrate" in in_class[2]
    assert "'hypergen_consumers.W005' to SILENCED_SYSTEM_CHECKS" in in_class[2]
    assert in_handler[:2] == (
        "Handlers",
        "The perm 'nosuchapp.moderate' of handler Handlers.moderate matches no Permission in the database, so "
        "every user but superusers is refused at runtime.",
    )
    assert in_handler[2].startswith("Correct it: a perm")  # Nothing close to guess from.
    assert one_of_two[1] == (
        "The perm 'auth.delete_usr' of handler Handlers.either matches no Permission in the database, so it never "
        "lets anyone in (the other perms still do) at runtime."
    )
    (warning, *_) = check_perms_exist(databases=["default"])
    assert (warning.id, warning.level) == ("hypergen_consumers.W005", checks.WARNING)
    assert in_class[1] in [w.msg for w in checks.run_checks(databases=["default"])]  # Registered.


@pytest.mark.django_db
def test_a_declared_perm_whose_row_migrate_has_not_made_yet_passes():
    """migrate runs the checks before it creates a new model's Permission rows."""
    Permission.objects.filter(codename="change_user").delete()
    typo, handlers, fine = define_perm_consumers()
    assert [msg for _, msg, _ in perm_warnings(handlers)] == [
        "The perm 'nosuchapp.moderate' of handler Handlers.moderate matches no Permission in the database, so "
        "every user but superusers is refused at runtime.",
        "The perm 'auth.delete_usr' of handler Handlers.either matches no Permission in the database, so it never "
        "lets anyone in (the other perms still do) at runtime.",
    ]


@pytest.mark.django_db
def test_the_dashboards_superuser_only_perm_is_not_a_mistake():
    """Its operations need a perm no row matches on purpose: every project with it would be warned."""
    assert DashboardConsumer in registry.REGISTRY.mounts  # tests/routing.py mounts it, as a project would.
    assert OPERATE_PERM in {spec.perm for spec in DashboardConsumer._handlers.values()}
    assert [w for w in check_perms_exist(databases=["default"]) if w.obj is DashboardConsumer] == []


def test_the_perm_check_needs_no_database_unless_one_is_given():
    """A plain manage.py check runs without a database (this test may not touch one: it would raise)."""
    typo, handlers, fine = define_perm_consumers()
    assert check_perms_exist() == []
    assert "hypergen_consumers.W005" not in [message.id for message in checks.run_checks()]
    call_command("check")  # A database check runs only with --database.
    assert check_perms_exist(databases=["other"]) == []  # Permission is read from "default".
