"""One websocket connection's life: the ASGI entry, the handshake, each frame's run, the end.

``lifecycle`` owns the socket from its first message to close: the three receivers it listens
to (the server, the channel layer, the connection's own inbox; ``receivers`` reads all
three, one message dispatched at a time) and ``dispatch``, where every message enters; ``handshake`` checks ``perm`` and joins the groups. A client frame reads top to
bottom in ``client_frames``, a group frame (and a catch-up) in ``group_frames``; both meet in
``pipeline``, the one path every handler run takes. ``sending`` sends (to the client, to the
group); ``targeting`` checks ``broadcast``. ``executor`` and ``rendering`` run the handler
(threads, timeouts, hypergen's context); ``heartbeat``, ``slow_readers``, ``ratelimit`` and
``handler_rates`` keep one connection from harming the others. ``state`` is the one record a
connection keeps, a part per concern; ``mixin`` composes the parts.
"""
