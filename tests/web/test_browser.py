"""The dashboard in headless Chromium, against the real server and real workers.

Chromium comes from Debian (`apt-get install chromium`), never from `playwright install`.
Without it these tests skip locally and fail in CI, where .ci/run installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Queuectl, wait_until
from tests.web.conftest import Server, enqueue_all, start_dashboard

pytestmark = pytest.mark.in_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
UPDATE_SCREENSHOT = "QUEUECTL_UPDATE_SCREENSHOT"  # set to rewrite docs/dashboard.png
INJECTION = "<script>alert(1)</script><img src=x onerror=alert(2)>"
EXPECT_TIMEOUT = 30_000  # milliseconds: a loaded 2-core machine runs jobs slowly


def _unavailable(reason: str) -> None:
    """Skip locally; in CI a missing browser is a failure, never a silent skip."""
    message = f"browser tests need Chromium and Playwright: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a script error or a console error (a CSP violation, a failed
    request) fails the test that caused it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(EXPECT_TIMEOUT)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    yield opened
    context.close()
    assert problems == []


def count(page: Page, state: str) -> str:
    return page.locator(f'[data-count="{state}"]').inner_text()


def test_dashboard_follows_workers_and_acts_on_jobs(q: Queuectl, page: Page) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    q.config("backoff-max", "0")
    enqueue_all(
        q,
        {"id": "report", "command": "echo report ready"},
        {"id": "backup", "command": "echo backed up", "queue": "backups"},
        {"id": "flaky", "command": "echo broken >&2; exit 3", "max_retries": 2},
        {"id": "xss", "command": f"printf '%s' '{INJECTION}'; exit 1", "max_retries": 1},
        {"id": "held", "command": "true", "queue": "held"},  # no worker serves it
    )
    server = start_dashboard(q)
    assert server.sign_in is not None
    page.goto(server.sign_in)
    expect(page.locator('[data-count="total"]')).to_have_text("5")
    expect(page.locator('[data-count="pending"]')).to_have_text("5")
    expect(page.locator("#live")).to_have_text("live")

    q.start_workers("--queue", "default,backups")
    expect(page.locator('[data-count="completed"]')).to_have_text("2")
    expect(page.locator('[data-count="dead"]')).to_have_text("2")
    expect(page.locator('[data-count="pending"]')).to_have_text("1")
    expect(page.locator("#workers tbody tr td code").first).to_contain_text("worker-")
    expect(page.locator("#chart rect.completed").first).to_be_visible()

    # The injected markup shows as text in the table and runs nothing.
    command_cell = page.locator('#jobs tr[data-job-id="xss"] td.command')
    expect(command_cell).to_contain_text(INJECTION)
    assert page.locator("#jobs img").count() == 0

    # Cancel the job no worker serves, from the table.
    page.locator('#jobs tr[data-job-id="held"] button[data-action="cancel"]').click()
    expect(page.locator("#message")).to_contain_text("Job held cancelled.")
    expect(page.locator('[data-count="cancelled"]')).to_have_text("1")

    # Filter the table by state.
    page.locator("#filters select[name=state]").select_option("dead")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    assert "state=dead" in page.url

    # Open the injected job: command and output are text, nothing ran.
    page.locator('#jobs tr[data-job-id="xss"] a').click()
    page.wait_for_url("**/jobs/xss")
    expect(page.locator('pre[data-field="command"]')).to_have_text(
        f"printf '%s' '{INJECTION}'; exit 1"
    )
    expect(page.locator('pre[data-field="output"]')).to_have_text(INJECTION)
    expect(page.locator("#history tbody tr")).to_have_count(1)
    assert page.locator("#job img").count() == 0

    # Retry it: back to pending, the worker runs it again, a second attempt appears.
    page.locator('button[data-action="retry"]').click()
    expect(page.locator("#message")).to_contain_text("moved back to pending")
    wait_until(lambda: len(q.history("xss")) == 2, timeout=30, message="xss to run again")
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(page.locator('[data-field="state"]')).to_have_text("dead")
    assert dialogs == []
    page.close()  # before the server goes: its refresh would find nobody there
    assert server.stop() == 0


def test_dashboard_screenshot_and_enqueue_form(
    q: Queuectl, page: Page, backend: str, tmp_path: Path
) -> None:
    """Enqueue from the form, purge the DLQ, and take the README's screenshot."""
    from playwright.sync_api import expect

    q.config("backoff-max", "0")
    jobs = [
        {"command": f'echo "rendering page {n}" && sleep 0.2', "queue": "reports"}
        for n in range(1, 9)
    ] + [
        {"command": f'echo "sending batch {n}" && sleep 0.1', "queue": "mail"}
        for n in range(1, 5)
    ] + [
        {"command": "test -f /data/2026-01.csv && ./import.sh /data/2026-01.csv",
         "max_retries": 2},
        {"command": "grep -q ERROR /var/log/nightly.log", "max_retries": 1},
    ]  # fmt: skip
    enqueue_all(q, *jobs)
    server = start_dashboard(q)
    assert server.sign_in is not None
    page.goto(server.sign_in)
    q.start_workers("--count", "2")
    expect(page.locator('[data-count="completed"]')).to_have_text("12")
    expect(page.locator('[data-count="dead"]')).to_have_text("2")

    form = page.locator("#enqueue")
    form.locator("input[name=command]").fill("sleep 30  # nightly build")
    form.locator("input[name=queue]").fill("builds")
    form.locator("input[name=priority]").fill("5")
    form.locator("button[type=submit]").click()
    expect(page.locator("#message")).to_contain_text("enqueued")
    expect(page.locator('[data-count="processing"]')).to_have_text("1")
    expect(page.locator("#workers")).to_contain_text("idle")
    page.locator("#message").evaluate("node => { node.hidden = true; }")
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    shot = page.screenshot(path=str(tmp_path / "dashboard.png"))
    assert shot.startswith(b"\x89PNG")
    # The README's picture: written when missing or asked for, so that a test run does
    # not leave a changed file in the work tree each time.
    if backend == "sqlite" and (not SCREENSHOT.exists() or os.environ.get(UPDATE_SCREENSHOT)):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)

    # Purge takes two clicks; no dialog box.
    purge = page.locator('button[data-action="purge"]')
    purge.click()
    expect(purge).to_have_text("Click again to purge")
    purge.click()
    expect(page.locator("#message")).to_contain_text("2 dead jobs deleted.")
    expect(page.locator('[data-count="dead"]')).to_have_text("0")
    page.close()  # before the server goes: its refresh would find nobody there
    assert server.stop() == 0


def test_page_without_the_token_is_read_only(q: Queuectl, page: Page) -> None:
    from playwright.sync_api import expect

    q.enqueue(id="p", command="true")
    server: Server = start_dashboard(q)
    page.goto(server.base)
    expect(page.locator(".banner")).to_contain_text("Read-only")
    expect(page.locator('#jobs tr[data-job-id="p"] button[data-action="cancel"]')).to_be_disabled()
    expect(page.locator('#enqueue button[type="submit"]')).to_be_disabled()
    page.close()  # before the server goes: its refresh would find nobody there
    assert server.stop() == 0


def test_dashboard_shows_each_queues_limit_and_rate_limit(q: Queuectl, page: Page) -> None:
    from playwright.sync_api import expect

    enqueue_all(q, {"command": "true", "queue": "api"}, {"command": "true"})
    q.ok("queue", "limit", "api", "2")
    q.ok("queue", "rate", "api", "30/m")
    server: Server = start_dashboard(q)
    page.goto(server.base)
    api = page.locator('#queues tr[data-queue="api"]')
    expect(api.locator('[data-field="limit"]')).to_have_text("2")
    expect(api.locator('[data-field="rate"]')).to_have_text("30/m")
    no_rate = page.locator('#queues tr[data-queue="default"] [data-field="rate"]')
    expect(no_rate).to_have_text("\N{EN DASH}")
    q.ok("queue", "rate", "api", "5/s")  # followed live
    expect(api.locator('[data-field="rate"]')).to_have_text("5/s")
    page.close()  # before the server goes: its refresh would find nobody there
    assert server.stop() == 0
