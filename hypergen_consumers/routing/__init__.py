"""Where consumers live: routes, ``reverse()``, the registry and group names.

``routes`` is ``path``, ``autoconsumers()`` and ``reverse()``; ``registry`` knows every consumer
class; ``route_order`` proves no route shadows another; ``groups`` derives group names from
classes and URL kwargs; ``group_owners`` maps a group back to its class for checked sends.
"""
