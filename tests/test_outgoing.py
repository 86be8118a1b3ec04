"""Outgoing frames are bounded by what the server can send (outgoing.py)."""

import json

import pytest
from django.test import override_settings
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, handler
from hypergen_consumers.errors import FRAME_TOO_LARGE, VALIDATION_ERROR
from hypergen_consumers.testing import ConsumerClient
from hypergen_consumers.wire.outgoing import check_frame_limits, error_frame, too_large


def test_too_large_counts_utf8_bytes():
    assert not too_large("x" * 100, 100)
    assert too_large("x" * 101, 100)
    assert too_large("é" * 51, 100)  # 102 bytes in 51 characters
    assert not too_large("é" * 50, 100)


@override_settings(HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=2000)
def test_an_error_frame_keeps_the_leading_errors_that_fit_and_says_how_many_there_were():
    errors = [{"loc": ["n", index], "msg": "Input should be a valid integer"} for index in range(500)]
    text = error_frame(VALIDATION_ERROR, "Invalid arguments for Room.add.", errors=errors, traceback="t" * 5000)
    assert len(text) <= 2000
    payload = json.loads(text)[0][1]
    assert payload["errors_total"] == 500
    assert payload["errors"] == errors[: len(payload["errors"])] and payload["errors"]
    assert "traceback" not in payload
    assert len(error_frame(FRAME_TOO_LARGE, "m" * 10_000)) <= 2000


@override_settings(HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=1000)
async def test_a_handler_output_over_the_limit_reaches_nobody_and_the_sender_gets_frame_too_large():
    class Shouter(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        async def shout(self, request, size: int):
            command("shout", "x" * size)

    async with ConsumerClient(Shouter) as sender, ConsumerClient(Shouter) as member:
        await sender.send("shout", 2000)
        payload = await sender.expect_error(FRAME_TOO_LARGE)
        assert payload["message"].startswith("Shouter.shout's output is 2014 bytes; the server sends at most 1000")
        await member.expect_nothing()
        assert await sender.call("shout", 3) == [["shout", "xxx"]]
        assert await member.receive() == [["shout", "xxx"]]


@override_settings(HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=1000)
async def test_consumer_command_over_the_limit_raises_for_the_caller():
    with pytest.raises(ValueError, match=r"consumer_command\(\): the commands are 2014 bytes, more than the 872"):
        await aconsumer_command("some-group", [["alert", "x" * 2000]])


def test_the_system_check_refuses_an_incoming_limit_the_server_never_applies():
    with override_settings(HYPERGEN_CONSUMERS_MAX_FRAME_BYTES=2 * 1024 * 1024):
        [error] = check_frame_limits()
    assert error.id == "hypergen_consumers.E003"
    assert "larger than the 1048576 bytes the server accepts" in error.msg
    with override_settings(
        HYPERGEN_CONSUMERS_MAX_FRAME_BYTES=2 * 1024 * 1024, HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=4 * 1024 * 1024
    ):
        assert check_frame_limits() == []
    assert check_frame_limits() == []
