"""`scopematrix login --user ID`: a headed browser for logins that can't be automated (SSO, passkeys)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import async_playwright

from scopematrix.browser import CHROMIUM_ARGS
from scopematrix.errors import UsageError
from scopematrix.matrix import load_matrix
from scopematrix.preflight import check_browser, check_display
from scopematrix.target import LIVE_APP_URL, check_url


def save_login(user_id: str, out: Path | None, matrix_path: Path | None, app_url: str | None) -> int:
    matrix = load_matrix(matrix_path)
    if user_id not in {u.id for u in matrix.spec.users}:
        raise UsageError(f"unknown user '{user_id}'.", f"use an id from {matrix.source}.")
    url = check_url("--app-url", app_url or LIVE_APP_URL)
    path = out or Path(".auth") / f"{user_id}.json"
    check_display(f"scopematrix login --user {user_id}")
    choice = check_browser(headless=False)

    async def run() -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                headless=False, executable_path=choice.executable_path, args=list(CHROMIUM_ARGS)
            )
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(url + "/login")
            input("Log in in the browser window, then press Enter here to save the login state... ")
            path.parent.mkdir(parents=True, exist_ok=True)
            await context.storage_state(path=str(path))
            await browser.close()

    asyncio.run(run())
    user = matrix.user(user_id)
    print(f"saved {path}; set {user.storage_state_env or 'storage_state_env in the matrix'}={path}")
    return 0
