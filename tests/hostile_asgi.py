"""The ASGI application of tests/test_hostile_third_pass.py: tests/hostile_consumers.py under ws/hostile/."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from hypergen_consumers import autoconsumers  # noqa: E402
from tests import hostile_consumers  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(autoconsumers(hostile_consumers, namespace="hostile")))
        ),
    }
)
