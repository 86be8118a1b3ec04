"""The dev overlay in chromium: error frames show on the page under DEBUG = True, never without."""

import pytest
from playwright.sync_api import expect

from tests.servers import daphne

pytestmark = [pytest.mark.server, pytest.mark.browser]

OVERLAY = "#hypergen-consumers-overlay"
SEND_RAW = """([handler, arg]) => {
    const url = Object.keys(hypergen.websocket.WEBSOCKETS)[0];
    hypergen.websocket.WEBSOCKETS[url].send(JSON.stringify({args: [handler, arg], meta: {}}));
}"""
RECORD_ERRORS = """() => {
    window.recordedErrors = [];
    window.addEventListener("hypergen:websocket:error", e => window.recordedErrors.push(e.detail.code));
}"""


@pytest.fixture(scope="module", params=["1", "0"], ids=["debug", "production"])
def server(request, example_db):  # noqa: F811
    env = {**example_db, "DEBUG": request.param}
    with daphne("example.asgi:application", settings="example.settings", env=env) as (port, _):
        yield f"http://127.0.0.1:{port}", request.param == "1"


def test_error_frames_show_as_a_dismissible_overlay_only_under_debug(server, open_page):  # noqa: F811
    base, debug = server
    page = open_page(f"{base}/mistakes/")
    page.evaluate(RECORD_ERRORS)
    page.click("#count-bad")
    page.wait_for_function("() => window.recordedErrors.length === 1")
    page.click("#explode")
    page.evaluate(SEND_RAW, ["<img src=x onerror=window.pwned=1>", 1])
    page.wait_for_function("() => window.recordedErrors.length === 3")
    assert page.evaluate("window.recordedErrors") == ["validation_error", "handler_error", "unknown_handler"]
    if not debug:
        assert page.locator(OVERLAY).count() == 0
        assert page.locator("script[data-hypergen-consumers-debug]").count() == 0
        return
    overlay = page.locator(OVERLAY)
    expect(overlay).to_be_visible()
    entries = overlay.locator(".hypergen-consumers-overlay-entry")
    expect(entries.locator(".hypergen-consumers-overlay-code")).to_have_text(
        ["unknown_handler", "handler_error", "validation_error"]  # Newest first.
    )
    unknown, failed, invalid = entries.nth(0), entries.nth(1), entries.nth(2)
    expect(unknown).to_contain_text("its handlers are ['count_to', 'explode']")
    expect(unknown).to_contain_text("<img src=x onerror=window.pwned=1>")  # As text, not as HTML.
    assert unknown.locator("img").count() == 0 and page.evaluate("window.pwned") is None
    expect(failed.locator("pre")).to_contain_text("ValueError: this handler fails on purpose")
    expect(invalid.locator("li")).to_have_text(["n: Input should be less than or equal to 10"])
    overlay.locator(".hypergen-consumers-overlay-close").click()
    expect(overlay).to_have_count(0)
    page.click("#count-ok")  # The page keeps working, and a success shows nothing.
    expect(page.locator("#mistake-result")).to_have_text("1, 2, 3")
    page.click("#count-bad")
    expect(overlay).to_be_visible()
    page.keyboard.press("Escape")
    expect(overlay).to_have_count(0)
