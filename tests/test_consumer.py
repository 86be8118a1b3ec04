"""Class creation: what the metaclass registers, and the mistakes it refuses at import time."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.declaring.options import snake_case


def raises_config(message):
    return pytest.raises(ImproperlyConfigured, match=re.escape(message))


def test_default_path_is_the_snake_case_class_name():
    class ChatRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def post(self, request): ...

    assert ChatRoom.path == "chat_room/"
    assert [snake_case(n) for n in ("ChatRoom", "HTTPStatus", "message_chatgroup", "A")] == [
        "chat_room",
        "http_status",
        "message_chatgroup",
        "a",
    ]


def test_handlers_are_registered_with_their_options():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        def post(self, request, text: str): ...

        @handler(perm="auth.change_user", any_perm=True, broadcast=True)
        async def purge(self, request): ...

        def helper(self):  # Not a handler: never reachable by a client.
            ...

    assert sorted(Room._handlers) == ["post", "purge"]
    post, purge = Room._handlers["post"], Room._handlers["purge"]
    assert (post.is_async, post.perm, post.broadcast, post.client_params) == (False, None, False, ("text",))
    assert (purge.is_async, purge.perm, purge.any_perm, purge.broadcast) == (True, "auth.change_user", True, True)


def test_subclasses_inherit_handlers_and_get_their_own_route():
    class Base(HypergenConsumer):
        abstract = True

        @handler
        def ping(self, request): ...

    class Concrete(Base):
        perm = NO_PERM_REQUIRED

    assert Concrete.path == "concrete/"
    assert list(Concrete._handlers) == ["ping"]


def test_missing_perm_names_the_class_and_the_fix():
    with raises_config(
        'NoPerm has no perm. Set perm = "app.codename" (or a list of them), as in @liveview(perm=...), '
        "or perm = NO_PERM_REQUIRED to allow everyone."
    ):

        class NoPerm(HypergenConsumer):
            @handler
            def post(self, request): ...


def test_a_perm_that_is_not_a_permission_string_is_refused():
    with raises_config("BadPerm.perm = 42 is not a permission string or a list of them."):

        class BadPerm(HypergenConsumer):
            perm = 42

            @handler
            def post(self, request): ...


def test_a_handler_perm_is_checked_too():
    with raises_config("Room.post has no perm."):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler(perm="")
            def post(self, request): ...


@pytest.mark.parametrize(
    "path, message",
    [
        ("/room/", "must not start with '/' or 'ws/'"),
        ("ws/room/", "must not start with '/' or 'ws/'"),
        ("^room/$", "looks like a regular expression"),
        ("room/<nonsense:x>/", "uses invalid converter 'nonsense'"),
        ("room/<int:not an identifier>/", "cannot contain whitespace"),
        (42, "BadPath.path must be a string, not 42."),
    ],
    ids=["leading-slash", "ws-prefix", "regex", "bad-converter", "bad-name", "not-a-string"],
)
def test_a_bad_path_is_refused(path, message):
    namespace = {
        "perm": NO_PERM_REQUIRED,
        "path": path,
        "post": handler(lambda self, request: None),
        "__module__": __name__,
    }
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        type(HypergenConsumer)("BadPath", (HypergenConsumer,), namespace)


def test_two_consumers_on_one_route_are_refused():
    class First(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:name>/"

        @handler
        def post(self, request): ...

    with raises_config("both use the route 'room/<slug:other>/'. Give one of them another path."):

        class Second(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            path = "room/<slug:other>/"

            @handler
            def post(self, request): ...


def test_a_handler_signature_that_cannot_be_validated_is_refused():
    class NotAModel:
        pass

    with raises_config("Room.post: parameter types cannot be validated"):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler
            def post(self, request, thing: NotAModel): ...


def test_an_unresolvable_annotation_is_refused():
    with raises_config("Room.post: parameter types cannot be validated (name 'Missing' is not defined)"):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler
            def post(self, request, thing: "Missing"): ...  # noqa: F821


def test_star_args_are_refused():
    with raises_config("Room.post: *args and **args parameters cannot be validated."):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler
            def post(self, request, *args): ...


def test_a_handler_must_take_self_and_request():
    with raises_config("Room.post must take (self, request, ...) as its first two parameters"):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            @handler
            def post(self): ...


@pytest.mark.parametrize("name", ["connect", "receive", "send_json", "websocket_receive", "reverse", "on_connect"])
def test_handler_names_that_mean_something_to_channels_are_refused(name):
    def method(self, request): ...

    with raises_config(f"Room.{name}: {name!r} cannot be a handler name"):
        type(HypergenConsumer)(
            "Room", (HypergenConsumer,), {"perm": NO_PERM_REQUIRED, name: handler(method), "__module__": __name__}
        )


def test_a_consumer_without_handlers_is_refused():
    with raises_config("Empty has no handlers: mark the methods clients may call with @handler"):

        class Empty(HypergenConsumer):
            perm = NO_PERM_REQUIRED


def test_on_connect_may_only_take_url_kwargs():
    with raises_config("Room.on_connect(self, request, ...) takes ['extra'], which are not URL kwargs"):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            path = "room/<slug:name>/"

            def on_connect(self, request, name, extra): ...

            @handler
            def post(self, request): ...


def test_handler_decorator_refuses_non_functions():
    with pytest.raises(TypeError, match=re.escape("@handler takes a plain function")):
        handler(staticmethod(lambda: None))


def test_boolean_options_must_be_booleans():
    with raises_config(
        "Room.broadcast: broadcast must be True (the group), False (the sender only) or "
        "'others' (the group but the sender), not 'yes'."
    ):

        class Room(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            broadcast = "yes"

            @handler
            def post(self, request): ...


def test_base_template_supplies_the_target_id():
    def page_template():  # pragma: no cover - only its attribute is read
        ...

    page_template.target_id = "content"

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        base_template = page_template

        @handler
        def post(self, request): ...

    assert Room.target_id == "content"
