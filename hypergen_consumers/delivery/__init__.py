"""The delivery guarantees: nothing lost, nothing run twice, order kept (docs/protocol.rst).

Up: ``frame_ids`` runs each client frame at most once per socket and ``replies`` keeps the
answer with the claim. Down: ``replay`` gives every group frame a position, ``streams`` says
which streams a connection is replayed from, ``catchup`` brings a resuming page up to date.
``local_groups`` receives a group's frames once per process and hands them to its members;
``recovery`` rejoins groups after a channel-layer outage. These modules keep the records and
decide; the connection (``connection.client_frames``, ``connection.group_frames``) sends.
"""
