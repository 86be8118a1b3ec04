"""Class options are one table: the base class, @consumer, the checks and the docs come from it."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, consumer, handler
from hypergen_consumers.declaring.options import OPTION_NAMES, OPTIONS

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^   \* - ``(\w+)``\n     - ``(.+)``\n     - ``(.+)``\n     - (.+)$", re.M)


def test_the_docs_table_is_the_declaration():
    text = (ROOT / "docs" / "api.rst").read_text()
    section = text[text.index("Class options\n-------------") : text.index("Settings\n--------")]
    assert ROW.findall(section) == [(o.name, o.type, repr(o.default), o.doc) for o in OPTIONS]


def test_the_base_class_has_every_default_and_a_type_for_the_checker():
    hints = {name for klass in HypergenConsumer.__mro__ for name in vars(klass).get("__annotations__", {})}
    hints.add("groups")  # Channels' own attribute: connection/state.py types it for the checker.
    for option in OPTIONS:
        assert getattr(HypergenConsumer, option.stored_as or option.name) == option.default, option.name
        if option.stored_as is None:
            assert option.name in hints, f"HypergenConsumer declares no type for {option.name}"


def test_consumer_takes_every_option_and_nothing_else():
    with pytest.raises(TypeError) as refused:
        consumer(perm=NO_PERM_REQUIRED, target="x")
    assert str(refused.value).endswith(f"it takes {', '.join(OPTION_NAMES)}.")

    def rule(connection):
        return "team-options"

    @consumer(
        perm="auth.view_user",
        any_perm=True,
        path="every-option/",
        target_id="here",
        base_template=None,
        broadcast="others",
        group_name=rule,
        groups=["news"],
        presence=True,
        presence_target_id="who",
        user_plugins=[],
        autourl=False,
        timeout=3,
        rate="5/s",
        replay_frames=10,
        replay_seconds=30,
    )
    def every_option(consumer, request):
        pass

    assert set(OPTION_NAMES) == {
        "perm", "any_perm", "path", "target_id", "base_template", "broadcast", "group_name", "groups",
        "presence", "presence_target_id", "user_plugins", "autourl", "timeout", "rate", "replay_frames",
        "replay_seconds",
    }  # fmt: skip
    assert every_option._group_rule is rule and every_option._presence_enabled is True
    assert (every_option.path, every_option.user_plugins, every_option.timeout) == ("every-option/", (), 3.0)
    assert every_option.group_name() == "team-options"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"perm": None}, "Bad has no perm."),
        ({"any_perm": "yes"}, "Bad.any_perm must be True or False, not 'yes'."),
        ({"autourl": 1}, "Bad.autourl must be True or False, not 1."),
        ({"presence": "yes"}, "Bad.presence must be True or False, not 'yes'."),
        ({"path": 5}, "Bad.path must be a string, not 5."),
        ({"target_id": ""}, "Bad.target_id must be an element id"),
        ({"presence_target_id": 3}, "Bad.presence_target_id must be an element id"),
        ({"broadcast": "all"}, "Bad.broadcast: broadcast must be True (the group), False (the sender only)"),
        ({"group_name": "lobby"}, "Bad.group_name must be a callable taking the consumer"),
        ({"timeout": -1}, "Bad.timeout must be a positive number of seconds"),
        ({"rate": "5 a second"}, 'Bad.rate: rate must be a string "<count>/<unit>"'),
        ({"replay_frames": -1}, "Bad.replay_frames must be a whole number of frames"),
        ({"replay_seconds": 0}, "Bad.replay_seconds must be a number of seconds above 0"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_every_checked_option_is_checked_at_class_creation(attributes, message):
    namespace = {"perm": NO_PERM_REQUIRED, "ping": handler(lambda self, request: None), **attributes}
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        type(HypergenConsumer)("Bad", (HypergenConsumer,), {"__module__": __name__, **namespace}, localns={})
