"""Take the README's picture (docs/chat.png) from the example site, so it can be taken again.

Two browsers (admin and friend) in the lobby, side by side: the messages, who is here, and
who is typing on the other page. It runs the example under a real daphne on a free port with a
throwaway database and drives chromium like the browser tests do:

    .venv/bin/python scripts/screenshots.py            # writes docs/chat.png
    .venv/bin/python scripts/screenshots.py /tmp/out   # or into another folder
"""

import base64
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright  # noqa: E402 (after sys.path)

from tests.servers import daphne, example_env, migrate_example  # noqa: E402

WINDOW = {"width": 900, "height": 560}  # One laptop-sized window each; the PNG stays < 100 KB.


def log_in(context: BrowserContext, base: str, username: str) -> None:
    """Log in on the example's login page (the demo accounts' password is their name)."""
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("#username", username)
    page.fill("#password", username)
    page.click("#login")
    deadline = time.monotonic() + 10
    while not any(cookie["name"] == "sessionid" for cookie in context.cookies()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: could not log in as {username}; is the example migrated?")
        page.wait_for_timeout(100)
    page.close()


def say(page: Page, text: str) -> None:
    """Type, let the debounced "is typing" frame go first, then send (as a person would)."""
    page.fill("#text", text)
    page.wait_for_timeout(400)
    page.click("#send")


def side_by_side(context: BrowserContext, left: bytes, right: bytes) -> Page:
    """One page showing two screenshots next to each other, as two windows on a desk."""

    def uri(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode()

    page = context.new_page()
    page.set_viewport_size({"width": 2 * WINDOW["width"] + 36, "height": WINDOW["height"] + 24})
    shadow = "box-shadow:0 2px 10px rgba(0,0,0,.25)"
    page.set_content(
        '<body style="margin:0;background:#c9ced6;display:flex;gap:12px;padding:12px">'
        f'<img src="{uri(left)}" style="{shadow}"><img src="{uri(right)}" style="{shadow}"></body>'
    )
    page.wait_for_timeout(300)
    return page


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        env = example_env(Path(folder) / "db.sqlite3")
        migrate_example(env)
        with daphne("example.asgi:application", settings="example.settings", env=env) as (port, _):
            base = f"http://127.0.0.1:{port}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                admin_browser = browser.new_context(viewport=WINDOW)
                friend_browser = browser.new_context(viewport=WINDOW)
                log_in(admin_browser, base, "admin")  # Staff: the nav links the dashboard.
                log_in(friend_browser, base, "friend")
                admin = admin_browser.new_page()
                admin.goto(f"{base}/chat/lobby/")
                friend = friend_browser.new_page()
                friend.goto(f"{base}/chat/lobby/")
                expect(admin.locator("#online li")).to_have_count(2)
                conversation = [
                    (admin, "Hi, is the deploy done?"),
                    (friend, "Yes, all green."),
                    (admin, "Great, thanks!"),
                    (friend, "The dashboard looks calm too."),
                ]
                for n, (page, text) in enumerate(conversation, 1):
                    say(page, text)
                    expect(admin.locator("#messages li")).to_have_count(n)
                    expect(friend.locator("#messages li")).to_have_count(n)
                admin.fill("#text", "Ship it")
                expect(friend.locator("#typing")).to_have_text("admin is typing…")
                both = side_by_side(admin_browser, admin.screenshot(), friend.screenshot())
                both.screenshot(path=out / "chat.png")
                browser.close()
    print(f"wrote {out / 'chat.png'} ({(out / 'chat.png').stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
