"""Prometheus metrics and Django signals, read after real frames (WebsocketCommunicator, one
real daphne), with bounded labels whatever a client sends, and nothing paid without
prometheus_client."""

import json
import urllib.request
from typing import Annotated

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from hypergen.imports import command, span
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field
from websockets.asyncio.client import connect

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, handler, signals
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.testing import ConnectionRefused, ConsumerClient
from tests.servers import daphne, run_script
from tests.test_authority import expect_close, logged_in_session
from tests.test_authority import open_socket as open_guarded
from tests.test_delivery import open_socket, receive
from tests.test_delivery_outage import restartable_redis, until  # noqa: F401  (a fixture)

FRAMES = "hypergen_consumers_frames_total"


def value(name, **labels):
    """A sample of the default registry, 0 when the series does not exist (yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def series(name, consumer):
    """Every label set of ``name`` for ``consumer`` in the default registry."""
    return [
        sample.labels
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and sample.labels.get("consumer") == consumer
    ]


def define(name, **attributes):
    """A consumer class named ``name`` (labels are per class name: each test uses its own)."""

    def say(self, request, text: Annotated[str, Field(max_length=10)]):
        span(text)

    def fail(self, request):
        raise RuntimeError("boom")

    def shout(self, request, text: str):
        command("shouted", text)

    namespace = {
        "perm": NO_PERM_REQUIRED,
        "target_id": "t",
        "path": f"{name.lower()}/",
        "say": handler(broadcast=False)(say),
        "fail": handler(fail),
        "shout": handler(shout),
        **attributes,
    }
    return type(name, (HypergenConsumer,), namespace)


async def test_each_metric_and_label_set_after_real_frames():
    cls = define("MetricsRoom")
    async with ConsumerClient(cls) as client, ConsumerClient(cls) as other:
        assert value("hypergen_consumers_connections", consumer="MetricsRoom") == 2
        await client.call("say", "hi")
        await client.call("shout", "all")
        await other.receive()
        await client.send("say", "far too long for ten")
        await client.expect_error("validation_error")
        await client.send("fail")
        await client.expect_error("handler_error")
        await client.send("no_such_handler")
        await client.expect_error("unknown_handler")
        await client.send_text("not json")
        await client.expect_error("invalid_frame")
    assert value(FRAMES, consumer="MetricsRoom", handler="say", outcome="ok") == 1
    assert value(FRAMES, consumer="MetricsRoom", handler="shout", outcome="ok") == 1
    assert value(FRAMES, consumer="MetricsRoom", handler="say", outcome="validation_error") == 1
    assert value(FRAMES, consumer="MetricsRoom", handler="fail", outcome="handler_error") == 1
    assert value(FRAMES, consumer="MetricsRoom", handler="", outcome="unknown_handler") == 1
    assert value(FRAMES, consumer="MetricsRoom", handler="", outcome="invalid_frame") == 1
    assert value("hypergen_consumers_handler_seconds_count", consumer="MetricsRoom", handler="say") == 2
    assert value("hypergen_consumers_handler_seconds_count", consumer="MetricsRoom", handler="fail") == 1
    assert value("hypergen_consumers_handler_seconds_count", consumer="MetricsRoom", handler="") == 0
    assert value("hypergen_consumers_group_frames_total", consumer="MetricsRoom") == 1
    assert value("hypergen_consumers_closes_total", consumer="MetricsRoom", code="1000") == 2
    assert value("hypergen_consumers_connections", consumer="MetricsRoom") == 0
    assert sorted(labels["outcome"] for labels in series(FRAMES, "MetricsRoom") if labels["handler"] == "say") == [
        "ok",
        "validation_error",
    ]


async def test_refused_and_ended_sessions_count_their_close_codes():
    guarded = define("MetricsGuarded", perm="auth.view_user")
    with pytest.raises(ConnectionRefused):
        await ConsumerClient(guarded, user=AnonymousUser()).connect()
    assert value("hypergen_consumers_closes_total", consumer="MetricsGuarded", code="4403") == 1
    assert value("hypergen_consumers_connections", consumer="MetricsGuarded") == 0

    from tests.test_authority import define_guarded

    cls = define_guarded()
    _, request = await logged_in_session()
    socket = await open_guarded(cls, request.session.session_key)
    before = value("hypergen_consumers_closes_total", consumer="Guarded", code="4401")
    await sync_to_async(request.session.delete)()
    await expect_close(socket, 4401)
    await socket.disconnect(4401)
    assert value("hypergen_consumers_closes_total", consumer="Guarded", code="4401") == before + 1


async def test_a_resync_is_counted():
    cls = define("MetricsReplay", path="metricsreplay/<slug:room>/", replay_frames=1)
    socket = await open_socket(cls, "r")
    [[_, position]] = await receive(socket)
    await socket.disconnect()
    for n in range(2):
        await aconsumer_command(cls.group_name(room="r"), [["missed", n]])
    back = await open_socket(cls, "r", position=position)
    assert (await receive(back))[0][0] == "hypergen.websocket.resync"
    await back.disconnect()
    assert value("hypergen_consumers_resyncs_total", consumer="MetricsReplay") == 1


@pytest.mark.server
async def test_a_layer_outage_is_counted_once(restartable_redis):  # noqa: F811
    stop, start = restartable_redis
    cls = define("MetricsOutage")
    before = value("hypergen_consumers_layer_outages_total")
    async with ConsumerClient(cls), ConsumerClient(cls):
        layer = get_channel_layer()
        stop()
        await until(lambda: backend_for(layer).health.is_down(), "a receive noticed the outage")
        start()
        await until(lambda: not backend_for(layer).health.is_down(), "the probe recovered")
    assert value("hypergen_consumers_layer_outages_total") == before + 1


async def test_ten_thousand_unknown_handler_names_add_no_label():
    """A hostile client names 10,000 handlers that do not exist: one series, counted 10,000 times."""
    cls = define("MetricsHostile")
    async with ConsumerClient(cls) as client:
        await client.call("say", "first")
        before = series(FRAMES, "MetricsHostile")
        for n in range(10_000):
            await client.send_text(json.dumps({"args": [f"handler_{n}", n], "meta": {}}))
        for _ in range(10_000):
            await client.receive(timeout=5)
    after = series(FRAMES, "MetricsHostile")
    assert sorted(map(str, after)) == sorted(
        map(str, before + [{"consumer": "MetricsHostile", "handler": "", "outcome": "unknown_handler"}])
    )
    assert value(FRAMES, consumer="MetricsHostile", handler="", outcome="unknown_handler") == 10_000
    assert series("hypergen_consumers_handler_seconds_count", "MetricsHostile") == [
        {"consumer": "MetricsHostile", "handler": "say"}
    ]


async def test_signals_carry_the_same_events_and_a_failing_receiver_harms_nothing():
    cls = define("SignalRoom")
    seen = []

    def record(signal_name):
        def receiver(sender, **kwargs):
            if sender is cls:
                seen.append(
                    (signal_name, {k: v for k, v in kwargs.items() if k not in ("signal", "connection", "seconds")})
                )

        return receiver

    def broken(sender, **kwargs):
        raise ValueError("a receiver's own bug")

    receivers = {
        name: record(name) for name in ("connection_opened", "frame_handled", "group_frame_sent", "connection_closed")
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    signals.frame_handled.connect(broken)
    try:
        async with ConsumerClient(cls) as client:
            await client.call("shout", "x")
            await client.send("nope")
            await client.expect_error("unknown_handler")
            assert await client.call("say", "still ok") == [["hypergen.morph", "t", "<span>still ok</span>"]]
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
        signals.frame_handled.disconnect(broken)
    assert seen == [
        ("connection_opened", {}),
        ("group_frame_sent", {}),
        ("frame_handled", {"handler": "shout", "outcome": "ok"}),
        ("frame_handled", {"handler": "", "outcome": "unknown_handler"}),
        ("frame_handled", {"handler": "say", "outcome": "ok"}),
        ("connection_closed", {"code": 1000}),
    ]


@pytest.mark.server
async def test_metrics_of_a_real_daphne_process_scraped_by_a_view():
    with daphne("tests.asgi:application") as (port, _):
        async with connect(
            f"ws://127.0.0.1:{port}/ws/tests/echo/metrics/", origin=f"http://127.0.0.1:{port}"
        ) as socket:
            await socket.send(json.dumps({"args": ["shout", "hello"], "meta": {}}))
            await socket.recv()
            await socket.send(json.dumps({"args": ["whisper"], "meta": {}}))
            await socket.recv()
            text = await sync_to_async(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics/").read().decode()
            )()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("hypergen_consumers_connections", (("consumer", "Echo"),))] == 1
    assert samples[(FRAMES, (("consumer", "Echo"), ("handler", "shout"), ("outcome", "ok")))] == 1
    assert samples[(FRAMES, (("consumer", "Echo"), ("handler", ""), ("outcome", "unknown_handler")))] == 1
    assert samples[("hypergen_consumers_group_frames_total", (("consumer", "Echo"),))] == 1
    assert samples[("hypergen_consumers_handler_seconds_count", (("consumer", "Echo"), ("handler", "shout")))] == 1


def test_without_prometheus_client_nothing_is_imported_and_frames_still_run():
    code = """
import sys
sys.modules["prometheus_client"] = None  # As if not installed: importing it raises ImportError.
import asyncio, django
django.setup()
from hypergen.imports import command
from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.observability import metrics
from hypergen_consumers.testing import ConsumerClient

class Plain(HypergenConsumer):
    perm = NO_PERM_REQUIRED

    @handler
    def ping(self, request):
        command("pong")

async def main():
    async with ConsumerClient(Plain) as client:
        assert await client.call("ping") == [["pong"]]
        await client.send("unknown")
        await client.expect_error("unknown_handler")

asyncio.run(main())
assert metrics.available() is False
assert sys.modules["prometheus_client"] is None, "nothing imported it for real"
print("ran without prometheus_client")
"""
    result = run_script(code, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran without prometheus_client"
