"""The dashboard's socket: add ``*websocket_urlpatterns`` to the project's websocket routes."""

from hypergen_consumers import autoconsumers
from hypergen_consumers.dashboard import consumer

websocket_urlpatterns = autoconsumers(consumer, namespace="hypergen_consumers")
