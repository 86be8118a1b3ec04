"""A burst of joins and leaves against a real Redis with redis-py's default pool (100 connections,
the excess fails): every channel joins and every channel leaves; the start-up check warns when
the pool is too small for the package."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.core import checks
from django.test import override_settings

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.delivery import local_groups
from hypergen_consumers.layers.pool_check import check_redis_pool_size
from hypergen_consumers.testing import ConsumerClient
from tests.servers import redis_server

pytestmark = pytest.mark.server


def redis_layer(port, **host):
    address = {"address": f"redis://127.0.0.1:{port}", **host}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [address]}}}


async def group_size(layer, group):
    async with layer.connection(layer.consistent_hash(group)) as connection:
        return await connection.zcard(layer._group_key(group))


async def test_500_connections_joining_then_leaving_at_once_leave_the_group_empty():
    class Crowd(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        async def noop(self, request): ...

    with redis_server() as port, override_settings(CHANNEL_LAYERS=redis_layer(port)):
        layer = get_channel_layer()
        group = Crowd.group_name()
        communicators = [ConsumerClient(Crowd).communicator for _ in range(500)]
        # Generous handshake timeouts: the machine may be loaded; what is checked is membership.
        connected = await asyncio.gather(*(communicator.connect(timeout=60) for communicator in communicators))
        assert all(accepted for accepted, _ in connected)
        # The process is in the group once, for its 500 local members (local_groups).
        assert await group_size(layer, group) == 1 and len(local_groups.local_members(layer, group)) == 500
        await asyncio.gather(*(communicator.disconnect(timeout=60) for communicator in communicators))
        assert await group_size(layer, group) == 0 and local_groups.local_members(layer, group) == []
        await layer.flush()


def test_a_pool_too_small_for_the_package_is_warned_about_at_start_up():
    assert checks.run_checks(tags=["hypergen_consumers"]) == []  # In-memory layer: nothing to say.
    with override_settings(CHANNEL_LAYERS=redis_layer(6379)):
        assert check_redis_pool_size() == []  # redis-py's default pool (100) fits the default 50 calls.
    with override_settings(CHANNEL_LAYERS=redis_layer(6379, max_connections=40)):
        [warning] = check_redis_pool_size()
        assert warning.id == "hypergen_consumers.W001"
        assert "holds 40 connections" in warning.msg and "max_connections': 120" in warning.hint
    with override_settings(CHANNEL_LAYERS=redis_layer(6379), HYPERGEN_CONSUMERS_LAYER_CONCURRENCY=200):
        [warning] = check_redis_pool_size()
        assert "up to 200 layer calls at once" in warning.msg
    url_pool = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0?max_connections=500"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=url_pool, HYPERGEN_CONSUMERS_LAYER_CONCURRENCY=200):
        assert check_redis_pool_size() == []


async def test_a_layer_call_that_hangs_is_cancelled_at_the_timeout_and_others_go_on():
    """A pooled connection to a restarted Redis can hang instead of failing: bounded() gives up."""
    from hypergen_consumers.layers.calls import bounded

    cancelled = asyncio.Event()

    async def hangs():
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def answers():
        return "answered"

    with override_settings(HYPERGEN_CONSUMERS_LAYER_TIMEOUT=0.2):
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself from Python 3.11 on.
            await bounded(hangs())
        assert cancelled.is_set()  # The hanging operation itself was cancelled, not left running.
        assert await bounded(answers()) == "answered"


async def test_the_logout_push_is_bounded_like_every_layer_call(monkeypatch, caplog):
    """Every sender publishes the same way, so a logout's push to its session's sockets is
    bounded too: a layer whose group_send hangs (a black-holed Redis) fails it within the layer
    timeout, and the failure is logged, instead of a task that waits for ever."""
    from hypergen_consumers.auth.authority import end_session

    layer = get_channel_layer()
    reached = asyncio.Event()

    async def hangs(group, message):
        reached.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(layer, "group_send", hangs)
    with override_settings(HYPERGEN_CONSUMERS_LAYER_TIMEOUT=0.2):
        end_session("a-session-key")  # From async code (an async view's alogout): a task of its own.
        await asyncio.wait_for(reached.wait(), 2)
        for _ in range(100):
            if "could not close the sockets of an ended session" in caplog.text:
                break
            await asyncio.sleep(0.05)
    assert "could not close the sockets of an ended session" in caplog.text
