"""Group names: always valid for Channels, distinct for distinct URLs, stable across processes."""

import re
import subprocess
import sys

import pytest
from channels.layers import BaseChannelLayer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.routing.groups import default_group_name, is_valid_group_name, safe_group_name
from hypergen_consumers.testing import ConsumerClient

channels_rule = BaseChannelLayer()
# Channels' own check of a group name (require_valid_group_name since Channels 4.3).
channels_check = getattr(channels_rule, "require_valid_group_name", None) or channels_rule.valid_group_name
LABEL = "chat.consumers.ChatRoom"
values = st.one_of(st.text(max_size=300), st.integers(), st.text(alphabet="ab-_.", max_size=5))


def assert_valid(name):
    assert is_valid_group_name(name), name
    assert channels_check(name)


@given(st.dictionaries(st.sampled_from(["room", "page", "user"]), values, max_size=3))
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_default_group_names_are_always_valid(url_kwargs):
    assert_valid(default_group_name(LABEL, url_kwargs))


@given(values, values)
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_distinct_url_kwargs_give_distinct_groups(first, second):
    if str(first) == str(second):
        return
    assert default_group_name(LABEL, {"room": first}) != default_group_name(LABEL, {"room": second})


@given(st.text(max_size=300))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_custom_names_are_kept_when_valid_and_made_valid_otherwise(name):
    result = safe_group_name(name)
    assert_valid(result)
    if is_valid_group_name(name):
        assert result == name


def test_readable_names_where_possible_and_hashes_where_not():
    assert default_group_name(LABEL, {"room_name": "vip"}) == "hc.chat.consumers.ChatRoom.room_name-vip"
    assert default_group_name(LABEL, {}) == "hc.chat.consumers.ChatRoom"
    spaced = default_group_name(LABEL, {"room_name": "v i p"})
    assert re.fullmatch(r"hc\.chat\.consumers\.ChatRoom\.room_name-v-i-p\.[0-9a-f]{16}", spaced)
    assert default_group_name(LABEL, {"room_name": "v-i-p"}) != spaced
    long = default_group_name(LABEL, {"room_name": "x" * 300})
    assert len(long) == 99
    # int and str forms of one URL value are one group (URL converters produce either).
    assert default_group_name(LABEL, {"page": 5}) == default_group_name(LABEL, {"page": "5"})


def test_the_same_name_in_another_process():
    code = "from hypergen_consumers.routing.groups import default_group_name as g; print(g('a.B', {'room': 'ünï cödé ' * 20}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == default_group_name("a.B", {"room": "ünï cödé " * 20})


async def test_connections_to_unicode_long_urls_join_distinct_valid_groups():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<str:name>/"

        @handler
        def post(self, request, text):
            from hypergen.imports import command

            command("got", text)

    names = ["日本語 の 部屋", "日本語 の 部屋 ", "x" * 300, "a b", "a-b"]
    clients = [ConsumerClient(Room, name=name) for name in names]
    for client in clients:
        await client.connect()
    try:
        groups = [Room.group_name(name=name) for name in names]
        assert len(set(groups)) == len(names)
        for group in groups:
            assert_valid(group)
        for index, client in enumerate(clients):
            await client.send("post", index)
            assert await client.receive() == [["got", index]]
            for other in clients:
                if other is not client:
                    await other.expect_nothing(0.02)
    finally:
        for client in clients:
            await client.close()


def test_custom_group_rule_gets_a_stand_in_with_the_lookup_arguments():
    class Team(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "team/<slug:team>/<int:page>/"

        def group_name(self):
            return f"team {self.url_kwargs['team']} / all pages"

        @handler
        def post(self, request): ...

    assert Team.group_name(team="red", page=1) == Team.group_name("red", 2)
    assert_valid(Team.group_name(team="red", page=1))
    assert Team.group_name(team="red", page=1) != Team.group_name(team="blue", page=1)


def define_secret_and_leaky():
    """A consumer with a default group, and one whose custom rule echoes a URL value."""

    class Secret(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "secret/"

        @handler
        def post(self, request): ...

    class Leaky(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "leaky/<str:room>/"

        def group_name(self):
            return self.url_kwargs["room"]

        @handler
        def post(self, request): ...

    return Secret, Leaky


reserved_names = st.one_of(
    st.text(alphabet="abcXYZ09_-.", max_size=40).map(lambda tail: "hc." + tail),
    st.text(alphabet="abcXYZ09_-.", max_size=40).map(lambda tail: "hc-" + tail),
    st.dictionaries(st.sampled_from(["room", "page"]), values, max_size=2).map(
        lambda kwargs: default_group_name("tests.test_groups.Secret", kwargs)
    ),
)


def test_a_custom_rule_can_never_return_a_reserved_name():
    from hypergen_consumers import ReservedGroupName

    _, Leaky = define_secret_and_leaky()

    @given(reserved_names)
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    def check(name):
        with pytest.raises(ReservedGroupName, match=re.escape("Leaky.group_name returned")):
            Leaky.group_name(room=name)

    check()


@given(st.text(max_size=300))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_a_custom_name_made_valid_never_lands_in_the_reserved_namespace(name):
    result = safe_group_name(name)
    if not is_valid_group_name(name):
        assert not result.startswith(("hc.", "hc-")), result


async def test_a_client_cannot_join_another_consumers_group_through_a_custom_rule(caplog):
    from hypergen_consumers import CloseCode, aconsumer_command
    from hypergen_consumers.testing import ConnectionRefused

    Secret, Leaky = define_secret_and_leaky()
    secret_group = Secret.group_name()
    async with ConsumerClient(Secret) as insider:
        attacker = ConsumerClient(Leaky, room=secret_group)
        with pytest.raises(ConnectionRefused) as refused:
            await attacker.connect()
        assert refused.value.code == CloseCode.PERMISSION_DENIED
        assert "Leaky.group_name returned" in caplog.text and "reserved" in caplog.text
        await aconsumer_command(secret_group, [["only", "insiders"]])
        assert await insider.receive() == [["only", "insiders"]]
    # A name of the user's own is kept as given (the seed's "vip_group").
    async with ConsumerClient(Leaky, room="vip_group") as member:
        assert Leaky.group_name(room="vip_group") == "vip_group"
        await aconsumer_command("vip_group", [["hi"]])
        assert await member.receive() == [["hi"]]
