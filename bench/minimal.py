"""The in-process baseline of the benchmark's (a) row: a minimal hand-written Playwright loop over the same
cells (log in once per user, open the authorize URL, wait for the heading, screenshot), serially, with no
page objects, classification, retries or records. The other arms are bench/naive/ and bench/tuned.py."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
from playwright.async_api import Browser, BrowserContext

from scopematrix.flow import WalkPlan, authorize_url
from scopematrix.matrix import Cell
from scopematrix.target import Target


async def _login(browser: Browser, target: Target, user: str) -> BrowserContext:
    creds = target.credentials[user]
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(target.app_url + "/login")
    await page.fill('[data-test-id="email-input-field"]', creds.email)
    await page.click('[data-test-id="email-submit-button"]')
    await page.fill('[data-test-id="password-input-field"]', creds.password)
    await page.click('[data-test-id="password-login-submit"]')
    await page.wait_for_load_state()
    if creds.totp_secret and await page.locator('[data-test-id="two-factor-code-input"]').count():
        await page.fill('[data-test-id="two-factor-code-input"]', pyotp.TOTP(creds.totp_secret).now())
        await page.click('[data-test-id="2fa-code-submit"]')
        await page.get_by_role("button", name="Skip for now").click()
    await page.wait_for_load_state()
    return context


async def run_minimal(browser: Browser, target: Target, cells: list[Cell], out: Path) -> float:
    """Seconds to take every cell's decisive screenshot, serially."""
    out.mkdir(parents=True, exist_ok=True)
    states: dict[str, object] = {}
    started = time.perf_counter()
    for n, cell in enumerate(cells):
        if cell.user.id not in states:
            login = await _login(browser, target, cell.user.id)
            states[cell.user.id] = await login.storage_state()
            await login.close()
        context = await browser.new_context(storage_state=states[cell.user.id])  # type: ignore[arg-type]
        page = await context.new_page()
        url = authorize_url(target, WalkPlan.for_cell(cell), True, "bench")
        await page.goto(url)
        await page.locator("h1").first.wait_for()
        await page.screenshot(path=str(out / f"{n}.png"))
        await context.close()
    return time.perf_counter() - started
