"""The account picker: one row per account with its Hub ID [R4][R36]. Skipped when the URL pins a Hub ID."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage


class AccountPickerPage(BasePage):
    SCREEN = Screen.ACCOUNT_PICKER

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.rows = page.locator('[data-test-id="account-row"]')

    def identity(self) -> Locator:
        return self.rows.first.or_(self.page.get_by_role("heading", name=re.compile("choose an account", re.I)))

    async def hub_ids(self) -> list[int]:
        ids: list[int] = []
        for small in await self.rows.locator("small").all():
            digits = re.sub(r"\D", "", await small.inner_text())
            if digits:
                ids.append(int(digits))
        return ids

    async def choose(self, hub_id: int) -> bool:
        """Pick the account; False when the picker doesn't list it."""
        row = self.rows.filter(has=self.page.locator("small", has_text=re.compile(rf"\b{hub_id}\b")))
        if not await row.count():
            return False
        await self.dismiss_cookie_banner()
        await self.click_away(row.first.get_by_role("button").or_(row.first.locator("a")).first)
        return True
