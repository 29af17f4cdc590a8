"""The dashboard in headless Chromium against a real ``orch-serv api`` with real runs: log
in, the runs page and its live updates, a failed run's error, the timeline, cancelling a
running run, replaying and purging dead letters, flows and health. Each test keeps a
screenshot in tests/ui/artifacts/."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from orch_serv.api.tokens import Scope
from orch_serv.constants import RunState
from tests.conftest import eventually
from tests.integration.amqp_helpers import queue_depth
from tests.ui.conftest import Ui, log_in, publish_dead_letter, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_login_is_required_and_leads_to_the_runs_page(browser: Browser, ui: Ui) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(ui.url("/runs?state=FAILED"))
    assert "/ui/login?next=" in page.url  # no session: the login page, remembering where
    await page.fill("#token", "osk_nope_wrong")
    await page.click("button[type=submit]")
    await expect(page.locator("[role=alert]")).to_contain_text("That token is not valid.")
    await screenshot(page, "login-refused")
    await page.fill("#token", ui.server.tokens[Scope.read])
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/ui/runs\?state=FAILED$"))
    await expect(page.locator("h1")).to_have_text("Runs")
    await expect(page.locator(".who")).to_contain_text("test-read")
    await context.close()


async def test_a_failed_run_is_followed_to_its_error(browser: Browser, ui: Ui) -> None:
    run_id = await ui.running.start("fragile", {"n": 41})
    assert (await ui.running.wait(run_id, timeout=30)).state is RunState.FAILED
    page = await log_in(browser, ui, Scope.read)
    await page.click("text=FAILED:")  # the count of failed runs links to them
    row = page.locator(f'tr[data-run="{run_id}"]')
    await expect(row).to_contain_text("ValueError: order 41 is malformed")
    await screenshot(page, "runs-failed")
    await row.locator("a").first.click()
    await page.wait_for_url(re.compile(f".*/ui/runs/{run_id}$"))
    await expect(page.locator("#run-state")).to_contain_text("FAILED")
    await expect(page.locator("#error-type")).to_have_text("ValueError")
    await expect(page.locator("#error-message")).to_have_text("order 41 is malformed")
    traceback = page.locator("#error-traceback")
    await expect(traceback).to_contain_text("Traceback (most recent call last)")
    await expect(traceback).to_contain_text("raise ValueError")
    # read-only: the retry button is there but disabled, and says why
    await expect(page.locator("#retry-run")).to_be_disabled()
    await expect(page.locator(".actions")).to_contain_text("operate")
    await screenshot(page, "run-failed-error")
    await page.context.close()


async def test_the_timeline_draws_attempts_retries_and_compensation(
    browser: Browser, ui: Ui
) -> None:
    ok_id = await ui.running.start("ship", {"n": 1})
    bad_id = await ui.running.start("ship", {"n": 2, "fail": True})
    assert (await ui.running.wait(ok_id, timeout=30)).state is RunState.SUCCEEDED
    assert (await ui.running.wait(bad_id, timeout=30)).state is RunState.COMPENSATED
    page = await log_in(browser, ui)
    await page.goto(ui.url(f"/runs/{ok_id}"))
    await expect(page.locator("#timeline g.attempt")).to_have_count(3)
    await expect(page.locator(".statuses")).to_contain_text("sent")
    await page.click("text=lineage")
    await expect(page.locator("#events-table")).to_contain_text("order-1")
    await screenshot(page, "run-succeeded-timeline")
    await page.goto(ui.url(f"/runs/{bad_id}"))
    bars = page.locator("#timeline g.attempt")
    await expect(bars).to_have_count(5)  # reserve, pack, send #1, send #2, undo reserve
    await expect(bars.nth(2)).to_contain_text("failed, retry in 0.05 s")
    await expect(bars.nth(3)).to_contain_text("3/3 send #2")
    await expect(bars.nth(4)).to_contain_text("undo 1/3 reserve #1")
    await expect(page.locator("#timeline rect.bar-queue").first).to_be_attached()
    await expect(page.locator("#timeline rect.bar-exec").first).to_be_attached()
    await screenshot(page, "run-compensated-timeline")
    await page.context.close()


async def test_a_running_run_is_cancelled(browser: Browser, ui: Ui) -> None:
    started = ui.tmp / "cancel-me"
    run_id = await ui.running.start("forever", {"started": str(started)})
    await eventually(lambda: _exists(started))
    page = await log_in(browser, ui, None)
    await page.goto(ui.url(f"/runs/{run_id}"))
    await expect(page.locator("#run-state")).to_contain_text("RUNNING")
    await screenshot(page, "run-running")
    await page.fill("input[name=reason]", "stuck in the test")
    await page.click("#cancel-run")
    await page.wait_for_url(re.compile(f".*/ui/runs/{run_id}\\?done=cancel$"))
    await expect(page.locator("#run-state")).to_contain_text("CANCELLED")
    await expect(page.locator("#events-table")).to_contain_text("stuck in the test")
    assert (await ui.running.get(run_id)).state is RunState.CANCELLED
    await screenshot(page, "run-cancelled")
    await page.context.close()


async def test_the_runs_page_updates_live(browser: Browser, ui: Ui) -> None:
    page = await log_in(browser, ui)
    await page.goto(ui.url("/runs?flow=ship"))
    run_id = await ui.running.start("ship", {"n": 3})
    row = page.locator(f'tr[data-run="{run_id}"]')  # polled in by the page's script
    await expect(row).to_contain_text("SUCCEEDED", timeout=20_000)
    await screenshot(page, "runs-live")
    await page.context.close()


async def test_a_dead_letter_is_shown_replayed_and_purged(browser: Browser, ui: Ui) -> None:
    namespace = ui.server.settings.namespace
    target = f"{namespace}.svc.nobody"
    await publish_dead_letter(namespace, "letter-replay", target)
    await publish_dead_letter(namespace, "letter-purge", target)
    page = await log_in(browser, ui, None)
    await page.goto(ui.url("/health"))
    letters = page.locator("#dead-letters")
    await expect(letters).to_contain_text("letter-replay")
    await expect(letters).to_contain_text("undecodable: test letter")
    await expect(page.locator("#queues")).to_contain_text(f"{namespace}.orchestrator")
    await expect(page.locator("#replicas tbody tr")).to_have_count(1)  # the test's replica
    await screenshot(page, "health-dead-letters")
    await page.click("text=letter-replay")
    await expect(page.locator("#letter-body")).to_have_text('{"not": "an envelope"}')
    await screenshot(page, "dead-letter")
    await page.click("#replay-letter")
    await page.wait_for_url(re.compile(r".*/ui/health\?done=replay.*"))
    await expect(page.locator("[role=status]")).to_have_text("Replayed 1 dead letter(s).")
    assert await queue_depth(target) == 1  # back in the queue it came from
    row = page.locator('tr[data-letter="letter-purge"]')
    await row.get_by_role("button", name="Purge", exact=True).click()
    await expect(page.locator("[role=status]")).to_have_text("Purged 1 dead letter(s).")
    await expect(page.locator("text=The dead-letter queue is empty.")).to_be_visible()
    await page.context.close()


async def test_flows_are_drawn_with_their_figures(browser: Browser, ui: Ui) -> None:
    run_id = await ui.running.start("ship", {"n": 4})
    await ui.running.wait(run_id, timeout=30)
    page = await log_in(browser, ui, Scope.read)
    await page.click("nav >> text=Flows")
    ship = page.locator('section[aria-label="flow ship"]')
    await expect(ship.locator("g.node-step")).to_have_count(3)
    await expect(ship.locator("g.node-compensation")).to_contain_text("undo reserve")
    await screenshot(page, "flows")
    await ship.locator("h2 a").click()
    figures = page.locator("#figures tbody tr")
    await expect(figures).to_have_count(3)
    await expect(figures.nth(0)).to_contain_text("1. reserve")
    await expect(page.locator("#figures")).to_contain_text("ms")  # p50/p99 were computed
    await screenshot(page, "flow-ship")
    await page.context.close()


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)
