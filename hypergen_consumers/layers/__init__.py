"""The channel layer and Redis, as this package uses them (the deployment guide's chapters).

``backend`` keeps one object per channel layer (its replay window, replies, presence and
outage state) and ``publish``, the one way every sender reaches a group; ``kind`` decides
once what a layer is (in memory, Redis, pub/sub) and where its Redis is; ``calls`` bounds
every layer call and turns layer failures into one clear error; ``messaging`` and ``users``
push from anywhere (views, tasks, handlers); ``redis_client`` builds the package's own Redis
clients; ``keys`` names what is kept in Redis; ``pool_check`` is the system check on the
channels-redis pool.
"""
