"""The account picker: one row per account, with its Hub ID and name [R4][R36]. Skipped when the URL pins a
Hub ID. Its heading is unconfirmed (brief, open question 5), so a row showing the Hub ID counts too."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage

PICKER_TITLE = re.compile(r"\b(choose|select|pick)\s+(an|your|a)\s+(HubSpot\s+)?account|which\s+account", re.I)
# Anything a person can click to choose a row.
CLICKABLE = "a[href], button, [role=button], [role=link], [role=option], [role=menuitem], input[type=submit]"
ROW = "li, tr, [role=row], [role=listitem], [role=option], div, section, label"


class AccountPickerPage(BasePage):
    SCREEN = Screen.ACCOUNT_PICKER

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = page.get_by_text(PICKER_TITLE).filter(visible=True)
        self.clickables = page.locator(CLICKABLE).filter(visible=True)

    def identity(self) -> Locator:
        return self.title

    def _choice(self, text: re.Pattern[str]) -> Locator:
        """The clickable for the row that shows `text`: the control itself, or the innermost row holding
        both the text and a control."""
        direct = self.clickables.filter(has_text=text)
        row = self.page.locator(ROW).filter(has_text=text).filter(has=self.clickables).last
        return direct.or_(row.locator(CLICKABLE).filter(visible=True)).first

    def row_for(self, hub_id: int, name: str = "") -> Locator:
        by_id = self._choice(re.compile(rf"(?<!\d){hub_id}(?!\d)"))
        if not name:
            return by_id
        return by_id.or_(self._choice(re.compile(re.escape(name), re.I))).first

    async def lists(self, hub_id: int, name: str = "") -> bool:
        return await self.row_for(hub_id, name).count() > 0

    async def choose(self, hub_id: int, name: str = "") -> bool:
        """Pick the account; False when the picker doesn't list it."""
        row = self.row_for(hub_id, name)
        if not await row.count():
            return False
        await self.dismiss_cookie_banner()
        if await self.title.count():
            await self.click_away(row)
        else:  # a picker known only by its rows: wait for the page to move on
            before = self.page.url
            await row.click()
            await self.page.wait_for_url(lambda url: url != before)
        return True
