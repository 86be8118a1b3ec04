"""@consumer: sugar over the class API, with every keyword argument exercised."""

import inspect
import re
import sys

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from hypergen.imports import command, span

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, autoconsumers, consumer
from hypergen_consumers.testing import ConnectionRefused, ConsumerClient


def test_the_decorated_name_is_a_consumer_class_with_its_lookups():
    @consumer(perm=NO_PERM_REQUIRED, path="<slug:chatgroup_name>/", target_id="counter")
    def message_chatgroup(consumer, request, chatgroup_name, message):
        """Docs survive."""

    assert issubclass(message_chatgroup, HypergenConsumer)
    assert message_chatgroup.__doc__ == "Docs survive."
    assert message_chatgroup.__module__ == __name__
    assert message_chatgroup.path == "<slug:chatgroup_name>/"
    assert message_chatgroup.target_id == "counter"
    assert list(message_chatgroup._handlers) == ["message_chatgroup"]
    assert message_chatgroup._handlers["message_chatgroup"].client_params == ("message",)
    assert message_chatgroup.as_asgi().consumer_class is message_chatgroup
    assert "def message_chatgroup(consumer, request, chatgroup_name, message):" in inspect.getsource(message_chatgroup)
    assert message_chatgroup.group_name(chatgroup_name="x").startswith("hc.")
    autoconsumers(sys.modules[__name__], namespace="fn")
    from django.test import RequestFactory
    from hypergen.context import context

    with context(request=RequestFactory().get("/")):
        assert message_chatgroup.reverse(chatgroup_name="x") == "ws://testserver/ws/fn/x/"


def test_default_path_is_the_function_name():
    @consumer(perm=NO_PERM_REQUIRED)
    def increment(consumer, request): ...

    assert increment.path == "increment/"


def test_perm_is_required():
    with pytest.raises(ImproperlyConfigured, match=re.escape("increment has no perm.")):

        @consumer
        def increment(consumer, request): ...


@pytest.mark.parametrize(
    "option, reason",
    [
        ("re_path", "regex routes are not supported"),
        ("login_url", "a websocket cannot redirect to a login page"),
        ("raise_exception", "always closes with code 4403"),
        ("redirect_field_name", "cannot redirect"),
        ("partial", "partial page loading is for HTTP liveviews"),
        ("base_view", "no page view to re-render"),
        ("appstate", "per-connection state lives on the consumer instance"),
    ],
)
def test_action_only_options_are_refused_with_the_reason(option, reason):
    with pytest.raises(TypeError, match=re.escape(reason)) as refused:
        consumer(perm=NO_PERM_REQUIRED, **{option: None})
    assert str(refused.value).startswith(f"@consumer does not take {option}=: ")


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match=re.escape("@consumer got an unexpected keyword argument 'target'")):
        consumer(perm=NO_PERM_REQUIRED, target="x")


async def test_broadcast_false_and_base_template_and_user_plugins():
    rendered = []

    def page():  # pragma: no cover - only its target_id is read
        ...

    page.target_id = "main"

    class Plugin:
        def template_before(self):
            rendered.append("before")

    @consumer(perm=NO_PERM_REQUIRED, base_template=page, broadcast=False, user_plugins=[Plugin()])
    def mine(consumer, request, text):
        span(text)

    async with ConsumerClient(mine) as a, ConsumerClient(mine) as b:
        assert await a.call("hi") == [["hypergen.morph", "main", "<span>hi</span>"]]
        await b.expect_nothing()
    assert rendered == ["before"]


async def test_group_name_option():
    @consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", group_name=lambda consumer: "everyone")
    def chat(consumer, request, room, text):
        command("chat", room, text)

    async with ConsumerClient(chat, room="a") as a, ConsumerClient(chat, room="b") as b:
        await a.send("hi")
        assert await a.receive() == [["chat", "a", "hi"]]
        assert await b.receive() == [["chat", "a", "hi"]]


async def test_any_perm_means_any_one_of_the_perms():
    @sync_to_async
    def viewer():
        user = User.objects.create_user("viewer")
        user.user_permissions.add(Permission.objects.get(codename="view_user"))
        return User.objects.get(pk=user.pk)

    user = await viewer()

    @consumer(perm=["auth.view_user", "auth.change_user"], any_perm=True, path="any/")
    def any_of(consumer, request):
        from hypergen.context import context

        command("matched", sorted(context.hypergen.matched_perms))

    @consumer(perm=["auth.view_user", "auth.change_user"], path="all/")
    def all_of(consumer, request): ...

    async with ConsumerClient(any_of, user=user) as client:
        assert await client.call() == [["matched", ["auth.view_user"]]]
    with pytest.raises(ConnectionRefused):
        await ConsumerClient(all_of, user=user).connect()


def test_consumer_takes_every_class_option_including_replay_and_extra_groups():
    """Class options and @consumer's keywords are one list: replay_frames once raised TypeError."""

    @consumer(perm=NO_PERM_REQUIRED, path="options-everywhere/", replay_frames=0, replay_seconds=5, groups=["news"])
    def options_everywhere(consumer, request):
        pass

    assert (options_everywhere.replay_frames, options_everywhere.replay_seconds) == (0, 5)
    assert options_everywhere.groups == ["news"]
    with pytest.raises(ImproperlyConfigured, match="replay_frames must be a whole number"):

        @consumer(perm=NO_PERM_REQUIRED, path="options-bad/", replay_frames="many")
        def options_bad(consumer, request):
            pass
