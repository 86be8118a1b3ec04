"""Who is connected to a group, across processes (the guide's "Presence" chapter).

``tracking`` is a connection's side (join, leave, ``on_presence``); ``hub`` is one process's
bookkeeping and heartbeats; ``stores`` keeps the entries (in the process for the in-memory
layer, in Redis for channels-redis); ``updates`` is ``self.update_presence(...)``.
"""
