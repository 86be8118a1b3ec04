"""hypergen.websocket.push / pushWith in chromium, against the example site on daphne.

The planning-poker page votes from a keyboard shortcut with push() (the example a visitor
sees), its votes live in presence metas (update_presence) and a new round is a group_send
run (from_server). The chat page is used for the promise rules: resolve after the reply is
applied, reject with the server's error for that frame, time out, and a push made offline
resolves once after reconnecting, through tests.proxy.Proxy.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import example_on_restartable_redis

pytestmark = [pytest.mark.server, pytest.mark.browser]

OFFLINE = re.compile("hypergen-websocket-offline")
URL = "Object.keys(hypergen.websocket.WEBSOCKETS)[0]"


def settle(page, script, arg=None):
    """Run ``script`` (an async function returning push()'s promise) and report how it settled."""
    return page.evaluate(
        f"""async (arg) => {{
            try {{ return {{resolved: await ({script})(arg)}}; }}
            catch (error) {{ return {{rejected: error}}; }}
        }}""",
        arg,
    )


def players(page):
    return page.locator("#players li")


def test_planning_poker_votes_from_the_keyboard_and_every_page_sees_who_voted(server_port, open_page):  # noqa: F811
    base = f"http://127.0.0.1:{server_port}/poker/kb/"
    ann, bob = open_page(base), open_page(base)
    for page in (ann, bob):
        expect(players(page)).to_have_text(["anonymous: thinking…", "anonymous: thinking…"])
    ann.keyboard.press("5")
    expect(ann.locator("#vote-status")).to_have_text("vote 5 counted")
    expect(ann.locator("#my-vote")).to_have_text("Your vote: 5")
    for page in (ann, bob):  # The meta changed: on_presence re-rendered into #players everywhere.
        expect(players(page)).to_have_text(["anonymous: voted", "anonymous: thinking…"], timeout=5_000)
    expect(bob.locator("#my-vote")).to_have_text("")
    bob.keyboard.press("4")  # Not a card: the server's validation_error rejects that keypress's promise.
    expect(bob.locator("#vote-status")).to_have_text("vote 4 refused: validation_error")
    bob.keyboard.press("8")
    expect(bob.locator("#vote-status")).to_have_text("vote 8 counted")
    for page in (ann, bob):
        expect(players(page)).to_have_text(["anonymous: voted", "anonymous: voted"])
    bob.click("#reveal")
    for page in (ann, bob):
        expect(page.locator("#poker-result")).to_have_text("Revealed by anonymous: anonymous 5, anonymous 8")
    ann.click("#new-round")  # A group_send run of clear_vote: from_server on every page.
    for page in (ann, bob):
        expect(page.locator("#my-vote")).to_have_text("New round: vote with the keys 1, 2, 3, 5 or 8.")
        expect(players(page)).to_have_text(["anonymous: thinking…", "anonymous: thinking…"])
    refused = settle(ann, f"() => hypergen.websocket.push({URL}, 'clear_vote')")
    assert refused == {"resolved": [["hypergen.morph", "my-vote", "<span>Only a new round clears the votes.</span>"]]}


def test_push_resolves_after_its_reply_is_applied(server_port, open_page):  # noqa: F811
    page = open_page(f"http://127.0.0.1:{server_port}/chat/push-resolve/")
    result = settle(
        page,
        f"""async () => {{
            const reply = await hypergen.websocket.push({URL}, "my_stats");
            return [document.getElementById("my-stats").textContent, reply];
        }}""",
    )
    assert result == {
        "resolved": [
            "You sent 0 messages here.",
            [["hypergen.morph", "my-stats", "<span>You sent 0 messages here.</span>"]],
        ]
    }
    sent = settle(page, f"() => hypergen.websocket.push({URL}, 'send_message', {{author: 'ann', text: 'pushed'}})")
    assert sent == {"resolved": []}, "a broadcast's own frame comes through the group: nothing in the ack's frame"
    expect(page.locator("#messages li")).to_have_text(["ann: pushed"])


def test_push_rejects_with_the_servers_error_for_that_frame_only(server_port, open_page):  # noqa: F811
    page = open_page(f"http://127.0.0.1:{server_port}/chat/push-reject/")
    results = page.evaluate(
        f"""async () => {{
            const url = {URL};
            const settle = p => p.then(value => ({{resolved: value}}), error => ({{rejected: error}}));
            // Sent back to back: each promise must get its own frame's answer.
            return await Promise.all([
                settle(hypergen.websocket.push(url, "send_message", {{author: "", text: "x"}})),
                settle(hypergen.websocket.push(url, "my_stats")),
                settle(hypergen.websocket.push(url, "no_such_handler", 1)),
                settle(hypergen.websocket.push(url, "my_stats")),
                settle(hypergen.websocket.push("ws://127.0.0.1:1/never-opened/", "my_stats")),
            ]);
        }}"""
    )
    invalid, stats, unknown, stats_again, not_open = results
    error = invalid["rejected"]
    assert error["code"] == "validation_error" and error["message"] == "Invalid arguments for ChatRoom.send_message."
    assert [(e["type"], e["loc"]) for e in error["errors"]] == [("string_too_short", ["message", "author"])]
    assert "resolved" in stats and "resolved" in stats_again
    assert unknown["rejected"]["code"] == "unknown_handler" and "errors" not in unknown["rejected"]
    assert not_open["rejected"]["code"] == "not_open"
    assert page.evaluate(f"hypergen.websocket.WEBSOCKETS[{URL}].unacknowledged.length") == 0


def test_push_with_a_timeout_rejects_and_the_frame_still_runs_once(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/push-timeout/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/push-timeout/")
    proxy.blackhole("down")  # The frame goes up and runs; its answer never comes down.
    result = settle(
        away,
        f"() => hypergen.websocket.pushWith({{timeout: 300}}, {URL}, 'send_message', {{author: 'ann', text: 'late'}})",
    )
    assert result["rejected"]["code"] == "timeout"
    assert "may still run once" in result["rejected"]["message"]
    expect(here.locator("#messages li")).to_have_text(["ann: late"])
    proxy.cut()
    come_back(away, proxy)
    expect(away.locator("#messages li")).to_have_text(["ann: late"], timeout=15_000)
    away.wait_for_function(f"() => hypergen.websocket.WEBSOCKETS[{URL}].unacknowledged.length === 0")
    here.fill("#author", "bob")
    here.fill("#text", "marker")
    here.click("#send")
    for page in (away, here):
        expect(page.locator("#messages li")).to_have_text(["ann: late", "bob: marker"])


def come_back(page, proxy):
    proxy.refuse(False)
    proxy.blackhole(None)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("html")).not_to_have_class(OFFLINE, timeout=15_000)


def test_a_push_made_offline_resolves_once_after_reconnecting(server_port, proxy, open_page):  # noqa: F811
    away = open_page(f"http://127.0.0.1:{proxy.port}/chat/push-offline/")
    here = open_page(f"http://127.0.0.1:{server_port}/chat/push-offline/")
    proxy.refuse(True)
    proxy.cut()
    expect(away.locator("html")).to_have_class(OFFLINE)
    away.evaluate(
        f"""() => {{
            window.settled = [];
            hypergen.websocket.push({URL}, "send_message", {{author: "ann", text: "from offline"}}).then(
                value => window.settled.push(["resolved", value]), error => window.settled.push(["rejected", error]));
            hypergen.websocket.push({URL}, "my_stats").then(
                value => window.settled.push(["resolved", document.getElementById("my-stats").textContent]),
                error => window.settled.push(["rejected", error]));
        }}"""
    )
    assert away.evaluate("window.settled") == [], "nothing settles while the socket is down"
    come_back(away, proxy)
    away.wait_for_function("() => window.settled.length === 2", timeout=15_000)
    assert away.evaluate("window.settled") == [["resolved", []], ["resolved", "You sent 1 messages here."]]
    for page in (away, here):
        expect(page.locator("#messages li")).to_have_text(["ann: from offline"])
    proxy.cut()  # Reconnect once more: nothing is re-sent, nothing settles twice.
    come_back(away, proxy)
    here.fill("#author", "bob")
    here.fill("#text", "marker")
    here.click("#send")
    for page in (away, here):
        expect(page.locator("#messages li")).to_have_text(["ann: from offline", "bob: marker"])
    assert len(away.evaluate("window.settled")) == 2


def test_a_push_refused_while_redis_is_down_follows_its_retry_and_resolves_once(example_db, open_page):  # noqa: F811
    """A broadcasting handler's frame is refused while the layer is down (layer_unavailable,
    retry) and client.js sends it again as a new frame: the promise follows that frame."""
    with example_on_restartable_redis(example_db) as (port, stop_redis, start_redis):
        sender = open_page(f"http://127.0.0.1:{port}/chat/push-outage/")
        other = open_page(f"http://127.0.0.1:{port}/chat/push-outage/")
        sender.evaluate(
            """() => { window.layerErrors = [];
            addEventListener("hypergen:websocket:error", e => window.layerErrors.push(e.detail.code)); }"""
        )
        stop_redis()  # Redis goes down.
        sender.evaluate(
            f"""() => {{
                window.settled = [];
                hypergen.websocket.pushWith({{timeout: 60000}}, {URL}, "send_message", {{author: "ann", text: "during"}}).then(
                    value => window.settled.push(["resolved", value]), error => window.settled.push(["rejected", error]));
            }}"""
        )
        sender.wait_for_function("() => window.layerErrors.includes('layer_unavailable')", timeout=15_000)
        assert sender.evaluate("window.settled") == [], "refused for a retry: still pending"
        start_redis()  # Back, empty.
        sender.wait_for_function("() => window.settled.length === 1", timeout=30_000)
        assert sender.evaluate("window.settled") == [["resolved", []]]
        for page in (sender, other):
            expect(page.locator("#messages li")).to_have_text(["ann: during"], timeout=15_000)
        assert sender.evaluate(f"Object.keys(hypergen.websocket.WEBSOCKETS[{URL}].retryingPushes).length") == 0
