"""One websocket connection's life: the ASGI entry, the handshake, each frame's run, the end.

``lifecycle`` owns the socket from accept to close and the three receivers it listens to (the
server, the channel layer, the connection's own inbox); ``pipeline`` is the one path every
handler run takes, whoever asked for it; ``sending`` and ``targeting`` decide who gets a run's
output; ``executor`` and ``rendering`` run the handler (threads, timeouts, hypergen's context);
``heartbeat``, ``slow_readers``, ``ratelimit`` and ``handler_rates`` keep one connection from
harming the others. ``state`` declares what the parts share; ``mixin`` composes them.
"""
