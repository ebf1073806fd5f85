"""The consent screen: app, account, scopes to grant, "Connect app" (current) or "Grant access" (older)."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage

CONSENT_BUTTON = re.compile(r"^\s*(Connect app|Grant access)\s*$")


class ConsentPage(BasePage):
    SCREEN = Screen.CONSENT

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.connect = page.get_by_role("button", name=CONSENT_BUTTON)
        self.cancel_button = page.get_by_role("button", name="Cancel", exact=True)
        self.scope_items = page.locator('[data-test-id="scope-item"]')

    def identity(self) -> Locator:
        return self.connect

    async def button_label(self) -> str:
        return (await self.connect.first.inner_text()).strip()

    async def offered_scopes(self) -> list[str]:
        scopes: list[str] = []
        for item in await self.scope_items.all():
            scopes.append(await item.get_attribute("data-scope") or (await item.inner_text()).strip())
        return scopes

    async def approve(self) -> None:
        await self.dismiss_cookie_banner()
        await self.connect.first.click()

    async def cancel(self) -> None:
        await self.dismiss_cookie_banner()
        await self.click_away(self.cancel_button)
