"""What the sockets are doing, seen from outside: Prometheus metrics and Django signals.

``metrics``: prometheus_client's families and per-consumer label children (no-ops when
prometheus_client is not installed). ``observe``: the calls the connection makes where
something happens. The signals themselves are public, in ``hypergen_consumers.signals``.
"""
