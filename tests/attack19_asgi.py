"""The ASGI application of tests/test_attack19.py: tests/attack19_consumers.py under ws/attack/."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from hypergen_consumers import autoconsumers, not_found_route  # noqa: E402
from tests import attack19_consumers  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([*autoconsumers(attack19_consumers, namespace="attack"), not_found_route()]))
        ),
    }
)
