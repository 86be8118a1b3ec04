"""Client mistakes are logged within a budget (mistake_log.py): bad frames cannot flood the log."""

import asyncio
import json
import logging

from django.test import override_settings
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.errors import INVALID_FRAME, RATE_LIMITED, UNKNOWN_HANDLER
from hypergen_consumers.testing import ConsumerClient
from hypergen_consumers.wire.mistake_log import mistakes


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def define_target():
    class Target(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        async def ok(self, request, n: int):
            command("ok", n)

    return Target


def log_bytes(caplog):
    return sum(len(record.getMessage()) for record in caplog.records if record.name == "hypergen_consumers")


async def test_200_bad_frames_write_a_bounded_log_and_the_suppressed_ones_are_counted(caplog, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(mistakes, "clock", clock)
    mistakes.reset()
    caplog.set_level(logging.WARNING, logger="hypergen_consumers")
    name = "x" * 250_000
    async with ConsumerClient(define_target()) as client:
        for n in range(200):
            await client.send_text(json.dumps({"args": [name, n], "meta": {}}) if n % 2 else "not json")
            await client.expect_error(UNKNOWN_HANDLER if n % 2 else INVALID_FRAME)
        assert len(caplog.records) == mistakes.lines
        assert log_bytes(caplog) < 8_000  # 20 lines of at most 300 characters and a prefix each
        clock.now += 60  # the budget refills; the next mistake's line comes with the count
        await client.send_text("not json")
        await client.expect_error(INVALID_FRAME)
    counted = [record.getMessage() for record in caplog.records if "were not logged" in record.getMessage()]
    assert counted == ["180 client errors were not logged: over the budget of 20 lines per 10 s"]
    assert caplog.records[-1].getMessage().startswith("Target: invalid_frame: Frame is not valid JSON")


@override_settings(HYPERGEN_CONSUMERS_RATE_LIMIT=5)
async def test_a_flood_over_the_rate_limit_is_not_logged_frame_by_frame(caplog, monkeypatch):
    monkeypatch.setattr(mistakes, "clock", FakeClock())
    mistakes.reset()
    caplog.set_level(logging.WARNING, logger="hypergen_consumers")
    async with ConsumerClient(define_target()) as client:
        codes = []
        for n in range(200):
            await client.send("ok", n)
            reply = await client.receive()
            codes.append(reply[0][1]["code"] if reply[0][0] == "hypergen.websocket.error" else "ok")
    assert codes.count(RATE_LIMITED) >= 190
    assert len([record for record in caplog.records if "rate_limited" in record.getMessage()]) == mistakes.lines


def test_the_budget_refills_with_time():
    clock = FakeClock()
    log = type(mistakes)(lines=2, seconds=10, clock=clock)
    assert [log.warning("T", "invalid_frame", "m") for _ in range(3)] == [True, True, False]
    clock.now += 5
    assert log.warning("T", "invalid_frame", "m") is True
    assert log.warning("T", "invalid_frame", "m") is False
    assert log.suppressed == 1  # the first one was counted in the line before


async def test_the_count_of_a_flood_followed_by_silence_is_logged_once_the_budget_has_room(caplog):
    from hypergen_consumers.wire.mistake_log import MistakeLog

    budget = MistakeLog(lines=2, seconds=0.1)
    with caplog.at_level(logging.WARNING, logger="hypergen_consumers"):
        for index in range(10):
            budget.warning("Target", "invalid_frame", f"bad frame {index}")
        assert [record.getMessage() for record in caplog.records] == [
            "Target: invalid_frame: bad frame 0",
            "Target: invalid_frame: bad frame 1",
        ]
        for _ in range(100):  # Nothing more comes; the count must still reach the log.
            if len(caplog.records) == 3:
                break
            await asyncio.sleep(0.02)
    assert caplog.records[-1].getMessage() == "8 client errors were not logged: over the budget of 2 lines per 0.1 s"
