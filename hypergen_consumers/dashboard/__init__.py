"""The live dashboard: every process's sockets on one staff-only page, live over its own socket.

Set-up (three lines; docs/deployment.rst, "The live dashboard"):

- ``"hypergen_consumers.dashboard"`` in ``INSTALLED_APPS``: every process then collects what
  its sockets do (from ``hypergen_consumers.signals``) and publishes a small snapshot through
  the channel layer every ``HYPERGEN_CONSUMERS_DASHBOARD_INTERVAL`` seconds (default 1.5);
- ``path("consumers/", include("hypergen_consumers.dashboard.urls"))`` in the project's urls;
- ``*hypergen_consumers.dashboard.routing.websocket_urlpatterns`` in its websocket routes.

Modules: ``collector`` (this process: counts, recent events, the publishing task), ``board``
(one page's view of every process, from their snapshots), ``consumer`` (the page's socket and
the operations), ``render`` (HTML and inline SVG), ``views`` (the staff-only page).
"""
