"""The benchmark server: every endpoint behind the same middleware stack as a real site."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402
from hypergen.imports import NO_PERM_REQUIRED  # noqa: E402

from benchsite import consumers as c  # noqa: E402
from benchsite import gc_knobs  # noqa: E402
from benchsite import scale_consumers as sc  # noqa: E402

ROUTES = {
    "roundtrip": {
        "raw_echo": c.RawEcho.as_asgi(),
        "raw_echo_nohop": c.RawEchoNoHop.as_asgi(),
        "raw_render": c.RawRender.as_asgi(),
        "raw_render_nohop": c.RawRenderNoHop.as_asgi(),
        "upstream": c.Upstream.as_asgi(perm=NO_PERM_REQUIRED),
        "ours_async": c.OursAsync.as_asgi(),
        "ours_async_noreplay": c.OursAsyncNoReplay.as_asgi(),
        "ours_sync": c.OursSync.as_asgi(),
        "ours_function": c.ours_function.as_asgi(),
        "ours_command": c.ours_command.as_asgi(),
        "chanx": c.ChanxEcho.as_asgi(),
    },
    "fanout": {
        "raw_group_send": c.RawGroupSend.as_asgi(),
        "raw_group_send_nohop": c.RawGroupSendNoHop.as_asgi(),
        "raw_local_send": c.RawLocalSend.as_asgi(),
        "upstream": c.UpstreamFanout.as_asgi(perm=NO_PERM_REQUIRED),
        "ours_async": c.OursAsyncFanout.as_asgi(),
        "ours_async_noreplay": c.OursAsyncFanoutNoReplay.as_asgi(),
        "ours_sync": c.OursSyncFanout.as_asgi(),
        "ours_function": c.ours_function_fanout.as_asgi(),
        "ours_presence": c.OursPresenceFanout.as_asgi(),
        "chanx": c.ChanxBroadcast.as_asgi(),
    },
    "scale": {  # bench/scale.py
        "storm": sc.StormRoom.as_asgi(),
        "lobby": sc.IdleLobby.as_asgi(),
        "plain": c.RawGroupSend.as_asgi(),
    },
}

websocket_urlpatterns = [
    path(f"ws/{scenario}/{endpoint}/", app) for scenario, apps in ROUTES.items() for endpoint, app in apps.items()
]
application = ProtocolTypeRouter({"websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))})
gc_knobs.apply()  # Off unless bench/profile_tails.py asks: the benchmark measures Python's defaults.
