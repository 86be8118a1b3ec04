from hypergen_consumers import autoconsumers, not_found_route
from hypergen_consumers.dashboard import routing as dashboard_routing
from tests import consumers

# Last: a path outside every namespace is closed with 4404 (not Channels' HTTP 500).
websocket_urlpatterns = [
    *autoconsumers(consumers, namespace="tests"),
    *dashboard_routing.websocket_urlpatterns,
    not_found_route(),
]
