"""The live dashboard over WebsocketCommunicator and Django's test client: who may see it, what
it shows, the operations and who may do them. tests/test_dashboard_browser.py runs it in
chromium across two daphne processes over Redis."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.dashboard import collector
from hypergen_consumers.dashboard.board import Board
from hypergen_consumers.dashboard.consumer import NOTICE_COMMAND, DashboardConsumer
from hypergen_consumers.testing import ConnectionRefused, ConsumerClient


@pytest.fixture
def dashboard_installed():
    """As with "hypergen_consumers.dashboard" in INSTALLED_APPS, for this test only."""
    collector.install()
    yield
    collector.uninstall()


def define_room():
    class DashRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "dashroom/<slug:room>/"

        @handler
        def ping(self, request, room: str):
            command("pong")

    return DashRoom


@sync_to_async
def make_user(username, *, staff=False, superuser=False):
    return User.objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)


async def rendered(client, predicate, timeout=5):
    """The next dashboard render (a morph of hc-dashboard-body) whose HTML satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        commands = await client.receive(timeout=max(0.1, deadline - time.monotonic()))
        html = client.morphed("hc-dashboard-body", commands)
        if html is not None and predicate(html):
            return html


@pytest.mark.parametrize("who", ["anonymous", "user", "inactive staff"])
async def test_only_active_staff_get_a_socket_and_crafted_frames_get_nothing(who, dashboard_installed):
    user = {
        "anonymous": lambda: AnonymousUser(),
        "user": lambda: User(username="plain", is_active=True),
        "inactive staff": lambda: User(username="gone", is_staff=True, is_active=False),
    }[who]()
    client = ConsumerClient(DashboardConsumer, user=user)
    with pytest.raises(ConnectionRefused) as refused:
        await client.connect()
    assert refused.value.code == 4403
    await collector.publish_now()  # A snapshot now goes to the dashboard group: it has no such member.
    layer_groups = getattr(__import__("channels.layers", fromlist=["x"]).get_channel_layer(), "groups", {})
    assert not layer_groups.get(collector.DASHBOARD_GROUP)


async def test_a_staff_page_sees_the_processes_consumers_groups_and_sockets(dashboard_installed):
    staff = await make_user("ops", staff=True)
    friend = await make_user("friend")
    room = define_room()
    async with ConsumerClient(room, room="blue", user=friend) as page:
        await page.call("ping")
        await page.send("nope")
        await page.expect_error("unknown_handler")
        async with ConsumerClient(DashboardConsumer, user=staff) as dashboard:
            html = await rendered(dashboard, lambda html: "DashRoom" in html and "friend" in html)
    assert re.search(r'class="hc-process" data-pid="\d+"', html)
    assert 'data-consumer="DashRoom"' in html and "dashroom/&lt;slug:room&gt;/" in html
    assert "unknown_handler: 1" in html
    assert 'class="hc-connection" data-user="friend"' in html
    assert "hc-close-user" not in html, "staff who may not operate get no operation buttons"
    assert "(no handler): unknown_handler" in html  # The live event log.
    assert "<polyline" in html  # The charts.


async def test_operations_need_the_operate_permission(dashboard_installed):
    staff = await make_user("ops", staff=True)
    friend = await make_user("friend")
    room = define_room()
    async with (
        ConsumerClient(room, room="blue", user=friend) as page,
        ConsumerClient(DashboardConsumer, user=staff) as dashboard,
    ):
        await rendered(dashboard, lambda html: "friend" in html)
        await dashboard.send("close_user", friend.pk)
        error = await dashboard.expect_error("permission_denied")
        assert "hypergen_consumers_dashboard.operate" in error["message"]
        await dashboard.send("notify_group", room.group_name(room="blue"), "hello")
        await dashboard.expect_error("permission_denied")
        assert await page.call("ping") == [["pong"]], "nothing reached the page"


async def test_a_superuser_closes_a_users_sockets_sends_a_notice_and_each_is_logged(dashboard_installed, caplog):
    admin = await make_user("admin", staff=True, superuser=True)
    friend = await make_user("friend")
    other = await make_user("other")
    room = define_room()
    first = ConsumerClient(room, room="blue", user=friend)
    second = ConsumerClient(room, room="green", user=friend)
    bystander = ConsumerClient(room, room="blue", user=other)
    for client in (first, second, bystander):
        await client.connect()
    async with ConsumerClient(DashboardConsumer, user=admin) as dashboard:
        html = await rendered(dashboard, lambda html: html.count('data-user="friend"') == 2 and "other" in html)
        assert "hc-close-user" in html
        await dashboard.send("notify_group", room.group_name(room="blue"), "maintenance at noon")
        for page in (first, bystander):
            [[name, payload]] = await page.receive()
            assert (name, payload) == (NOTICE_COMMAND, {"text": "maintenance at noon", "from": "admin"})
        await second.expect_nothing()
        await dashboard.send("close_user", friend.pk)
        for page in (first, second):
            assert await page.communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        assert await bystander.call("ping") == [["pong"]]
        html = await rendered(dashboard, lambda html: "closed every socket of friend" in html)
        assert "sent a notice to" in html and "by admin" in html
        await dashboard.send("close_user", 999999)  # Not on the dashboard: refused, nothing sent.
        await dashboard.expect_error("invalid_frame")
    assert any("dashboard: admin closed every socket of friend" in record.getMessage() for record in caplog.records)
    for client in (first, second, bystander):
        await client.close()


def test_a_process_that_stops_publishing_drops_out_and_rates_come_from_two_snapshots():
    board = Board(interval=0.01)

    def snapshot(process, at, frames):
        return {
            "id": process,
            "host": "h",
            "pid": 1,
            "started": 0.0,
            "at": at,
            "connections": 1,
            "frames": frames,
            "errors": 0,
            "consumers": {
                "Room": {"route": "r/", "connections": 1, "frames": frames, "errors": {}, "p50": None, "p99": None}
            },
            "sockets": [],
            "events": [],
        }

    board.add(snapshot("a", 100.0, 10))
    board.add(snapshot("a", 102.0, 30))
    assert board.frames_per_second() == 10.0
    assert board.consumers()[0]["rate"] == 10.0
    time.sleep(0.05)  # Past STALE_AFTER intervals of 0.01 s without a snapshot.
    board.drop_stale()
    assert board.processes == {}


@pytest.mark.django_db
def test_the_page_is_for_staff_only():
    client = Client()
    response = client.get("/consumers/")
    assert response.status_code == 302 and "/login/?next=/consumers/" in response["Location"]
    User.objects.create_user("plain", password="pw")
    client.login(username="plain", password="pw")
    assert client.get("/consumers/").status_code == 403
    User.objects.create_user("ops", password="pw", is_staff=True)
    client.login(username="ops", password="pw")
    html = client.get("/consumers/").content.decode()
    assert '["hypergen.websocket.open","ws://testserver/ws/hypergen_consumers/dashboard/"]' in html
    assert "hc-notice-send" not in html  # Staff without the operate permission.


async def test_a_superuser_closes_one_connection_and_only_that_one(dashboard_installed):
    admin = await make_user("admin", staff=True, superuser=True)
    friend = await make_user("friend")
    room = define_room()
    closing, staying = ConsumerClient(room, room="blue", user=friend), ConsumerClient(room, room="green", user=friend)
    await closing.connect()
    await staying.connect()
    async with ConsumerClient(DashboardConsumer, user=admin) as dashboard:
        await rendered(dashboard, lambda html: html.count('data-user="friend"') == 2)
        [blue] = [entry for entry in dashboard_sockets() if entry["group"] == room.group_name(room="blue")]
        await dashboard.send("close_connection", blue["channel"])
        assert await closing.communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        assert await staying.call("ping") == [["pong"]]
        await dashboard.send("close_connection", "specific.not-on-the-dashboard!x")  # Any other channel: refused.
        await dashboard.expect_error("invalid_frame")
    await staying.close()


def dashboard_sockets():
    """The sockets the (one) open dashboard connection lists on its board."""
    from hypergen_consumers.dashboard.collector import COLLECTOR

    dashboards = [c for c in COLLECTOR.connections if isinstance(c, DashboardConsumer)]
    return dashboards[0].board.sockets()


async def test_a_dashboard_socket_whose_user_loses_staff_is_closed_at_its_next_render(dashboard_installed):
    staff = await make_user("ops", staff=True)
    async with ConsumerClient(DashboardConsumer, user=staff) as dashboard:
        await rendered(dashboard, lambda html: "hc-process" in html)
        staff.is_staff = False  # As the authority's re-read would find it.
        for _ in range(3):  # A render may be on its way; the next snapshot's render closes.
            message = await dashboard.communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
        assert message == {"type": "websocket.close", "code": 4403}
