"""What a consumer class declares, checked when the class is created (the guide's first chapters).

``configuration`` is what the metaclass checks and compiles; ``handlers`` is ``@handler`` and
its validators; ``callback_checks`` and ``checked_sends`` catch typos in callbacks and backend
pushes where they are written; ``url_kwarg_hints`` explains unbound URL kwargs; ``schema``
describes the mounted consumers (AsyncAPI); ``checks`` are the system checks; ``client_script``
loads client.js into pages that use a consumer.
"""
