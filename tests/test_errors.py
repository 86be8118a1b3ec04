"""Every row of the errors table (docs/protocol.rst, "Errors and bad input") that needs no Redis.

An error reaches the sender alone, as one frame holding one command, is logged, and the
connection stays usable: each test ends with a successful call on the same connection.
"""

import asyncio
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import path
from hypergen.imports import span

from hypergen_consumers import (
    FRAME_TOO_LARGE,
    HANDLER_ERROR,
    INVALID_FRAME,
    NO_PERM_REQUIRED,
    PERMISSION_DENIED,
    RATE_LIMITED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
    HypergenConsumer,
    handler,
)
from hypergen_consumers.testing import ConnectionRefused, ConsumerClient, frame


def make_room(calls):
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "out"

        @handler
        def add(self, request, a: int, b: int = 1):
            calls.append((a, b))
            span(a + b)

        @handler(perm="auth.change_user")
        def moderate(self, request):
            calls.append("moderate")

        @handler
        def explode(self, request):
            calls.append("explode")
            raise ZeroDivisionError("kaboom")

        def helper(self, request):  # Not a handler.
            calls.append("helper")

    return Room


async def still_usable(client, calls):
    before = len(calls)
    assert await client.call("add", 2, 3) == [["hypergen.morph", "out", "<span>5</span>"]]
    assert len(calls) == before + 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("this is not json", "Frame is not valid JSON: JSONDecodeError: Expecting value: line 1 column 1 (char 0)"),
        ('{"args": [{"_": ["date", "2020-99-99"]}], "meta": {}}', "'2020-99-99' is not a valid date."),
        (
            '{"args": [{"_": ["nonsense", 1]}], "meta": {}}',
            "Unknown tagged value 'nonsense' in the frame; the tags are ['date', 'datetime', ",
        ),
        ("[" * 100_000 + "]" * 100_000, "The frame nests arrays/objects more than 32 deep."),
        ('["add", 1, 2]', 'Expected {"args": [...], "meta": {...}}, the frame hypergen\'s callback() sends.'),
        ('{"args": ["add", 1]}', 'Expected {"args": [...], "meta": {...}}, the frame hypergen\'s callback() sends.'),
        (
            '{"args": "add", "meta": {}}',
            'Expected {"args": [...], "meta": {...}}, the frame hypergen\'s callback() sends.',
        ),
        (
            '{"args": ["add"], "meta": []}',
            'Expected {"args": [...], "meta": {...}}, the frame hypergen\'s callback() sends.',
        ),
    ],
    ids=[
        "not-json",
        "bad-date",
        "unknown-hypergen-type",
        "deep-nesting",
        "list",
        "no-meta",
        "args-not-list",
        "meta-not-dict",
    ],
)
async def test_invalid_frames_get_an_error_and_the_connection_stays_usable(text, message, caplog):
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send_text(text)
        payload = await client.expect_error(INVALID_FRAME)
        assert payload["message"].startswith(message)
        assert calls == []
        assert any(INVALID_FRAME in record.getMessage() for record in caplog.records)
        await still_usable(client, calls)


async def test_binary_frames_get_invalid_frame():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.communicator.send_to(bytes_data=b"\x00\x01")
        payload = await client.expect_error(INVALID_FRAME)
        assert payload == {"code": INVALID_FRAME, "message": "Binary frames are not supported; send JSON text."}
        await still_usable(client, calls)


@override_settings(HYPERGEN_CONSUMERS_MAX_FRAME_BYTES=100)
async def test_frames_over_the_size_limit_get_frame_too_large():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send("add", "1" * 200)
        payload = await client.expect_error(FRAME_TOO_LARGE)
        assert payload["message"] == "Frame is larger than 100 bytes (HYPERGEN_CONSUMERS_MAX_FRAME_BYTES)."
        await client.send("add", "é" * 40)  # 40 characters, but more than 100 bytes of UTF-8.
        await client.expect_error(FRAME_TOO_LARGE)
        assert calls == []
        await still_usable(client, calls)


@pytest.mark.parametrize("name", ["nope", "helper", "__init__", "websocket_receive", "dispatch", 42])
async def test_unknown_handler_names_run_nothing(name):
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send(name, 1)
        payload = await client.expect_error(UNKNOWN_HANDLER)
        assert payload["message"] == (
            f"Room has no handler {name!r}; its handlers are ['add', 'explode', 'moderate']. The first "
            f"callback argument of a class consumer always names the handler: callback(url, 'add', ...)."
        )
        assert calls == []
        await still_usable(client, calls)


async def test_a_long_unknown_handler_name_is_truncated_in_the_reply():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send("x" * 250_000)
        payload = await client.expect_error(UNKNOWN_HANDLER)
        assert "'" + "x" * 60 + "...'" in payload["message"]
        assert len(payload["message"]) < 300
        await still_usable(client, calls)


@pytest.mark.parametrize("text", ['{"args": [], "meta": {}}', '{"args": [null], "meta": {}}'])
async def test_a_frame_that_names_no_handler_is_told_so_not_that_none_is_unknown(text):
    """No handler is named: "Room has no handler None" read as if a handler were called None."""
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send_text(text)
        payload = await client.expect_error(UNKNOWN_HANDLER)
        assert payload["message"] == (
            "The frame to Room named no handler: the first callback argument of a class consumer must "
            "name the handler, e.g. callback(url, 'add', ...); its handlers are ['add', 'explode', 'moderate']."
        )
        assert calls == []
        await still_usable(client, calls)


async def test_args_that_fail_validation_get_pydantic_errors_and_run_nothing():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send("add", "one", [])
        payload = await client.expect_error(VALIDATION_ERROR)
        assert payload == {
            "code": VALIDATION_ERROR,
            "message": "Invalid arguments for Room.add.",
            "errors": [
                {
                    "type": "int_parsing",
                    "loc": ["a"],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                },
                {"type": "int_type", "loc": ["b"], "msg": "Input should be a valid integer"},
            ],
        }
        await client.send("add")
        assert (await client.expect_error(VALIDATION_ERROR))["errors"] == [
            {"type": "missing", "loc": ["a"], "msg": "Field required"}
        ]
        await client.send("add", 1, 2, 3, 4)
        assert (await client.expect_error(VALIDATION_ERROR))["errors"] == [
            {"type": "unexpected_positional_argument", "loc": [2], "msg": "Unexpected positional argument"},
            {"type": "unexpected_positional_argument", "loc": [3], "msg": "Unexpected positional argument"},
        ]
        assert calls == []
        await still_usable(client, calls)


async def test_a_user_without_perm_is_refused_at_the_handshake_and_joins_no_group():
    class Secret(HypergenConsumer):
        perm = "auth.view_user"

        @handler
        def peek(self, request): ...

    with pytest.raises(ConnectionRefused) as refused:
        async with ConsumerClient(Secret):
            pass  # pragma: no cover - never connected
    assert refused.value.code == 4403
    assert get_channel_layer().groups == {}

    user = await sync_to_async(User.objects.create_user)("nobody")
    with pytest.raises(ConnectionRefused):
        async with ConsumerClient(Secret, user=user):
            pass  # pragma: no cover - never connected
    assert get_channel_layer().groups == {}


async def test_frames_sent_on_a_refused_connection_run_nothing():
    """Refusing accepts then closes (so browsers see 4403): a client that keeps talking gets nothing."""
    calls = []

    class Secret(HypergenConsumer):
        perm = "auth.view_user"

        @handler
        def peek(self, request):
            calls.append("peek")

    communicator = WebsocketCommunicator(URLRouter([path("secret/", Secret.as_asgi())]), "/secret/")
    accepted, _ = await communicator.connect()
    assert accepted is True
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4403}
    await communicator.send_to(text_data=frame("peek"))
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect()
    assert calls == []
    assert get_channel_layer().groups == {}


async def test_a_user_without_a_handlers_perm_gets_permission_denied():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send("moderate")
        payload = await client.expect_error(PERMISSION_DENIED)
        assert payload == {
            "code": PERMISSION_DENIED,
            "message": "Room.moderate requires permission 'auth.change_user'.",
        }
        assert calls == []
        await still_usable(client, calls)


async def test_an_exception_in_a_handler_is_reported_without_traceback_and_logged_with_one(caplog):
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        with caplog.at_level(logging.ERROR, logger="hypergen_consumers"):
            await client.send("explode")
            payload = await client.expect_error(HANDLER_ERROR)
        assert payload == {"code": HANDLER_ERROR, "message": "Room.explode failed: ZeroDivisionError."}
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert record.getMessage() == "Room: handler_error: explode raised ZeroDivisionError"  # Within the log budget.
        assert record.exc_info[0] is ZeroDivisionError
        await still_usable(client, calls)


@override_settings(DEBUG=True)
async def test_with_debug_the_handler_error_carries_the_traceback():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send("explode")
        payload = await client.expect_error(HANDLER_ERROR)
        assert "ZeroDivisionError: kaboom" in payload["traceback"]
        assert 'raise ZeroDivisionError("kaboom")' in payload["traceback"]


async def test_a_client_disconnecting_mid_handler_leaves_its_group_without_crashing():
    started, release, finished = asyncio.Event(), asyncio.Event(), []

    class Slow(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "out"

        @handler
        async def wait(self, request):
            started.set()
            await release.wait()
            span("done")
            finished.append(True)

    client = ConsumerClient(Slow)
    await client.connect()
    group = Slow.group_name()
    assert len(get_channel_layer().groups[group]) == 1
    await client.send("wait")
    await asyncio.wait_for(started.wait(), timeout=2)
    await client.communicator.send_input({"type": "websocket.disconnect", "code": 1001})
    release.set()
    await client.communicator.wait(timeout=2)  # Raises if the consumer crashed.
    assert finished == [True]
    assert group not in get_channel_layer().groups


async def test_frames_are_exactly_one_error_command():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        await client.send_text("{")
        raw = await client.communicator.receive_from()
        (command,) = json.loads(raw)
        assert command[0] == "hypergen.websocket.error"
        assert set(command[1]) == {"code", "message"}


@override_settings(HYPERGEN_CONSUMERS_RATE_LIMIT=5)
async def test_a_flooding_client_is_rate_limited_and_its_budget_still_works():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        for n in range(8):
            await client.send("add", n, 0)
        replies = [await client.receive() for _ in range(8)]
        worked = [reply for reply in replies if reply[0][0] == "hypergen.morph"]
        limited = [reply for reply in replies if reply[0][0] == "hypergen.websocket.error"]
        assert len(worked) == 5, "a bucket of one second's worth (5) passes"
        assert [reply[0][1] for reply in limited] == [
            {"code": RATE_LIMITED, "message": "More than 5 messages per second (HYPERGEN_CONSUMERS_RATE_LIMIT)."}
        ] * 3
        assert calls == [(n, 0) for n in range(5)]


async def test_without_the_setting_there_is_no_rate_limit():
    calls = []
    async with ConsumerClient(make_room(calls)) as client:
        for n in range(50):
            await client.send("add", n, 0)
        replies = [await client.receive() for _ in range(50)]
        assert all(reply[0][0] == "hypergen.morph" for reply in replies)
