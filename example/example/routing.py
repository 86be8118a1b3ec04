"""Project-wide websocket routes, collected from each app's routing.py (like urls.py)."""

import chat.routing

import hypergen_consumers.dashboard.routing
from hypergen_consumers import not_found_route

# not_found_route() last: a path no consumer serves is closed with 4404 (final for client.js)
# instead of Channels' "No route found", an HTTP 500 that a browser would retry forever.
websocket_urlpatterns = [
    *chat.routing.websocket_urlpatterns,
    *hypergen_consumers.dashboard.routing.websocket_urlpatterns,
    not_found_route(),
]
