"""A Redis outage seen from a real page (chromium, the example site on daphne over channels-redis).

While Redis is down, a handler that answers only its sender still runs (its frame id is
claimed in the process instead of in Redis); a chat message, whose handler answers the room,
is refused before it runs, and client.js sends it again after a short backoff: it appears
once, after Redis is back. Redis restarts without its data, as a crashed or redeployed one
does.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import example_on_restartable_redis, send_chat

pytestmark = [pytest.mark.server, pytest.mark.browser]

RECORD_ERRORS = """() => { window.layerErrors = [];
    addEventListener("hypergen:websocket:error", e => window.layerErrors.push(e.detail.code)); }"""


def test_during_a_redis_outage_sender_only_frames_run_and_room_messages_are_sent_again_once(example_db, open_page):  # noqa: F811
    with example_on_restartable_redis(example_db) as (port, stop_redis, start_redis):
        sender = open_page(f"http://127.0.0.1:{port}/chat/outage/")
        other = open_page(f"http://127.0.0.1:{port}/chat/outage/")
        sender.evaluate(RECORD_ERRORS)
        send_chat(sender, "before", author="ann")
        for page in (sender, other):
            expect(page.locator("#messages li")).to_have_text(["ann: before"])

        stop_redis()  # Redis goes down.
        sender.click("#stats")  # broadcast=False: needs no layer, so it runs.
        expect(sender.locator("#my-stats")).to_have_text("You sent 1 messages here.", timeout=15_000)

        send_chat(sender, "during the outage", author="ann")
        sender.wait_for_function("() => window.layerErrors.includes('layer_unavailable')", timeout=15_000)
        start_redis()  # Back, empty.

        expected = ["ann: before", "ann: during the outage"]
        for page in (sender, other):
            expect(page.locator("#messages li")).to_have_text(expected, timeout=30_000)
        send_chat(other, "marker", author="bob")  # Nothing more (no second copy) came before it.
        for page in (sender, other):
            expect(page.locator("#messages li")).to_have_text([*expected, "bob: marker"])
        sender.click("#stats")
        expect(sender.locator("#my-stats")).to_have_text("You sent 2 messages here.")
