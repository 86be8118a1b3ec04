"""ASGI entry point: HTTP through Django, websockets through the consumers' routing."""

import gc
import os

import django
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from example import routing  # noqa: E402

# Under `daphne example.asgi:application` the example serves its static files itself, as
# runserver does, with DEBUG or without (a real site serves them from its proxy or whitenoise).
http_application = ASGIStaticFilesHandler(get_asgi_application())

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process: take it out of the garbage collector's
# full collections, which otherwise pause the process ~45 ms about once a second under load
# and set the p99 of def handlers (docs/deployment.rst, "Tail latency").
gc.freeze()
