"""Authority is not frozen at the handshake: logout, session deletion, deactivation and removed
permissions reach open sockets (close 4401 / 4403, permission_denied)."""

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib import auth
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory, override_settings
from django.urls import path
from hypergen.imports import command

from hypergen_consumers import PERMISSION_DENIED, CloseCode, HypergenConsumer, handler
from hypergen_consumers.testing import frame


def define_guarded():
    class Guarded(HypergenConsumer):
        perm = "auth.view_user"
        broadcast = False

        @handler
        def ping(self, request):
            command("pong", request.user.username)

        @handler(perm="auth.change_user")
        def change(self, request):
            command("changed")

    return Guarded


@sync_to_async
def logged_in_session(username="alice", perms=("view_user", "change_user")):
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = user
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    return user, request


@sync_to_async
def remove_perm(user, codename):
    user.user_permissions.remove(Permission.objects.get(codename=codename))


async def open_socket(cls, session_key, username="alice"):
    application = AuthMiddlewareStack(URLRouter([path("ws/guarded/", cls.as_asgi())]))
    communicator = WebsocketCommunicator(
        application,
        "/ws/guarded/",
        headers=[
            (b"host", b"testserver"),
            (b"origin", b"http://testserver"),
            (b"cookie", f"sessionid={session_key}".encode()),
        ],
    )
    connected, code = await communicator.connect()
    assert connected, code
    await communicator.send_to(text_data=frame("ping"))
    assert await communicator.receive_json_from(timeout=5) == [["pong", username]]
    return communicator


async def expect_close(communicator, code):
    message = await communicator.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": code}


async def test_logout_in_another_tab_closes_the_sessions_sockets_with_4401():
    cls = define_guarded()
    user, request = await logged_in_session()
    first = await open_socket(cls, request.session.session_key)
    second = await open_socket(cls, request.session.session_key)
    await sync_to_async(auth.logout)(request)
    await expect_close(first, CloseCode.SESSION_ENDED)
    await expect_close(second, CloseCode.SESSION_ENDED)


async def test_a_deleted_session_closes_its_sockets_and_other_sessions_stay():
    cls = define_guarded()
    _, request = await logged_in_session()
    socket = await open_socket(cls, request.session.session_key)
    _, other_request = await logged_in_session("bob")
    other = await open_socket(cls, other_request.session.session_key, username="bob")
    await sync_to_async(request.session.delete)()
    await expect_close(socket, CloseCode.SESSION_ENDED)
    await other.send_to(text_data=frame("ping"))
    assert await other.receive_json_from(timeout=5) == [["pong", "bob"]]


@override_settings(HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS=0)
async def test_a_deactivated_user_is_closed_with_4401_at_the_next_message():
    cls = define_guarded()
    user, request = await logged_in_session()
    socket = await open_socket(cls, request.session.session_key)
    await sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)
    await socket.send_to(text_data=frame("ping"))
    await expect_close(socket, CloseCode.SESSION_ENDED)


@override_settings(HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS=0)
async def test_a_removed_consumer_perm_closes_with_4403_and_a_removed_handler_perm_is_denied():
    cls = define_guarded()
    user, request = await logged_in_session()
    socket = await open_socket(cls, request.session.session_key)
    await socket.send_to(text_data=frame("change"))
    assert await socket.receive_json_from(timeout=5) == [["changed"]]
    await remove_perm(user, "change_user")
    await socket.send_to(text_data=frame("change"))
    [[_, error]] = await socket.receive_json_from(timeout=5)
    assert error["code"] == PERMISSION_DENIED
    await remove_perm(user, "view_user")
    await socket.send_to(text_data=frame("ping"))
    await expect_close(socket, CloseCode.PERMISSION_DENIED)


async def test_changes_are_read_at_most_every_recheck_seconds():
    cls = define_guarded()
    user, request = await logged_in_session()
    socket = await open_socket(cls, request.session.session_key)
    await sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)
    # Within HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS (5) of the handshake the user is not re-read.
    await socket.send_to(text_data=frame("ping"))
    assert await socket.receive_json_from(timeout=5) == [["pong", "alice"]]
    with override_settings(HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS=0):
        await socket.send_to(text_data=frame("ping"))
        await expect_close(socket, CloseCode.SESSION_ENDED)
