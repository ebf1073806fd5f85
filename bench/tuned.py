"""The tuned arm: a hand-written async Playwright script, as a skilled engineer writes one in an afternoon.

Every user logs in once (concurrently), then N contexts are in flight in one browser: open the authorize
URL, wait for the heading, screenshot. A scope set installed first by another user (`installed_by`) is
installed by that user once per account, before its cells: the same work scopematrix does. Written from the
hosted screens (the brief's selectors and texts), not from scopematrix.
`python -m bench.tuned CELLS.json --concurrency N --browser PATH --out DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pyotp
from playwright.async_api import Browser, async_playwright

FLAGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]


async def login(browser: Browser, cell: dict[str, Any]) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(cell["app_url"] + "/login")
    await page.fill('[data-test-id="email-input-field"]', cell["email"])
    await page.click('[data-test-id="email-submit-button"]')
    await page.fill('[data-test-id="password-input-field"]', cell["password"])
    await page.click('[data-test-id="password-login-submit"]')
    await page.wait_for_load_state()
    if cell["totp"] and await page.locator('[data-test-id="two-factor-code-input"]').count():
        await page.fill('[data-test-id="two-factor-code-input"]', pyotp.TOTP(cell["totp"]).now())
        await page.click('[data-test-id="2fa-code-submit"]')
        await page.get_by_role("button", name="Skip for now").click()
    await page.wait_for_load_state()
    state = await context.storage_state()
    await context.close()
    return state


async def run(cells: list[dict[str, Any]], concurrency: int, executable: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    slots = asyncio.Semaphore(concurrency)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=FLAGS)
        first = {c["user"]: c for c in cells}
        for c in cells:  # an installer who has no cells of their own logs in too
            if c.get("installer") and c["installer"]["user"] not in first:
                first[c["installer"]["user"]] = {**c, **c["installer"]}

        async def one_login(user: str) -> tuple[str, Any]:
            async with slots:
                return user, await login(browser, first[user])

        states = dict(await asyncio.gather(*(one_login(u) for u in first)))

        async def install(installer: dict[str, Any]) -> None:
            async with slots:
                context = await browser.new_context(storage_state=states[installer["user"]])
                page = await context.new_page()
                await page.goto(installer["url"])
                async with page.expect_request(lambda r: r.url.startswith(installer["redirect_uri"])):
                    await page.get_by_role("button", name="Connect app").click()
                await context.close()

        installs = {json.dumps(c["installer"], sort_keys=True): c["installer"] for c in cells if c.get("installer")}
        await asyncio.gather(*(install(i) for i in installs.values()))

        async def one(n: int, cell: dict[str, Any]) -> None:
            async with slots:
                context = await browser.new_context(storage_state=states[cell["user"]])
                page = await context.new_page()
                await page.goto(cell["url"])
                await page.locator("h1").first.wait_for()
                await page.screenshot(path=str(out / f"{n}.png"))
                await context.close()

        await asyncio.gather(*(one(n, c) for n, c in enumerate(cells)))
        await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cells", type=Path)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--browser", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(run(json.loads(args.cells.read_text()), args.concurrency, args.browser, args.out))
