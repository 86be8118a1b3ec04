"""README.md's tour runs as printed: its files become a small project, driven like a page would."""

import re
import sys
import types
from pathlib import Path

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import include, path

from hypergen_consumers.testing import ConsumerClient

README = Path(__file__).resolve().parent.parent / "README.md"
FILE_HEADER = re.compile(r"^# (\w+)/(\w+)\.py|^# anywhere in the backend", re.M)


def tour_parts():
    """{"chat.consumers": source, ..., "backend": source} from the README's tour block."""
    text = README.read_text()
    block = re.search(r"## A [\w-]+ tour\n\n```python\n(.*?)```", text, re.S)[1]
    starts = [match.start() for match in FILE_HEADER.finditer(block)] + [len(block)]
    parts = {}
    for start, end in zip(starts, starts[1:]):
        source = block[start:end]
        header = FILE_HEADER.match(source)
        parts[f"{header[1]}.{header[2]}" if header[1] else "backend"] = source
    return parts


def load_tour():
    parts = tour_parts()
    assert list(parts) == ["chat.consumers", "chat.routing", "chat.views", "chat.urls", "backend"]
    assert "chat" not in sys.modules, "the tour's package would shadow a real 'chat' module"
    package = types.ModuleType("chat")
    package.__path__ = []
    sys.modules["chat"] = package
    modules = {}
    for dotted in ["chat.consumers", "chat.routing", "chat.views", "chat.urls"]:
        module = types.ModuleType(dotted)
        sys.modules[dotted] = modules[dotted] = module
        setattr(package, dotted.split(".")[1], module)
        exec(compile(parts[dotted], f"README.md:{dotted}", "exec"), module.__dict__)
    project_urls = types.ModuleType("tour_project_urls")  # The project's urls.py, as the tour's comment says.
    project_urls.urlpatterns = [path("", include("chat.urls"))]
    sys.modules["tour_project_urls"] = project_urls
    return modules, parts["backend"]


def forget_tour():
    for name in ["chat", "chat.consumers", "chat.routing", "chat.views", "chat.urls", "tour_project_urls"]:
        sys.modules.pop(name, None)


def render_page(user, room_name):
    client = Client()
    client.force_login(user)
    with override_settings(ROOT_URLCONF="tour_project_urls"):
        response = client.get(f"/chat/{room_name}/")
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


async def test_the_readme_tour_runs_as_printed():
    try:
        modules, backend = load_tour()
        chat_room = modules["chat.consumers"].ChatRoom
        admin = await sync_to_async(User.objects.create_superuser)("admin")

        html = await sync_to_async(render_page)(admin, "vip")
        url = "ws://testserver/ws/chat/room/vip/"
        assert url in html
        assert '["hypergen.callback","ws://testserver/ws/chat/room/vip/",["send_message",' in html, html
        assert "client.js" in html  # Loaded automatically by a liveview that reverses a consumer.

        async with (
            ConsumerClient(chat_room, room_name="vip", user=admin) as sender,
            ConsumerClient(chat_room, room_name="vip", user=admin) as member,
        ):
            # The frame the page's button sends: the handler's name, then the text field's value.
            commands = await sender.call("send_message", "hi")
            assert commands == await member.receive()
            assert sender.morphed("status") == "<span>Last message in vip by admin</span>"
            assert sender.appended("messages") == ["<li>hi</li>"]

            await sync_to_async(exec)(
                compile(backend, "README.md:backend", "exec"), dict(modules["chat.views"].__dict__)
            )
            for client in (sender, member):
                await client.receive()
                assert client.appended("messages") == ["<li>Hello from the server</li>"]
                assert await client.receive() == [["alert", "Maintenance in 5 minutes"]]
    finally:
        forget_tour()
