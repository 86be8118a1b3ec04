"""Project-wide websocket routes, collected from each app's routing.py (like urls.py)."""

import chat.routing

websocket_urlpatterns = chat.routing.websocket_urlpatterns
