"""Typed passwords and 2FA codes never show in screenshots: the page objects name the fields to mask."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from scopematrix.browser import CHROMIUM_ARGS, find_browser
from scopematrix.pages.login import LoginEmailPage, LoginPasswordPage
from scopematrix.simulator.server import SimServer

pytestmark = pytest.mark.e2e


def test_a_typed_password_is_masked_in_screenshots(sim_server: SimServer) -> None:
    choice = find_browser()
    assert choice is not None

    async def shots() -> tuple[bytes, bytes, bytes, bytes]:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=choice.executable_path, args=list(CHROMIUM_ARGS))
            page = await browser.new_page()
            await page.goto(sim_server.url + "/login")
            email = LoginEmailPage(page)
            assert await email.masks() == []  # no secret field on the screen: no mask (it costs a repaint)
            await email.submit_email("someone@example.com")
            step = LoginPasswordPage(page)

            async def shot(secret: str, masked: bool) -> bytes:
                await step.password.fill(secret)
                return await page.screenshot(mask=await step.masks() if masked else [], animations="disabled")

            out = (await shot("hunter2", True), await shot("a-much-longer-secret!", True),
                   await shot("hunter2", False), await shot("a-much-longer-secret!", False))  # fmt: skip
            await browser.close()
            return out

    masked_a, masked_b, plain_a, plain_b = asyncio.run(shots())
    assert plain_a != plain_b  # the field's content shows when unmasked ...
    assert masked_a == masked_b  # ... and not at all when masked
