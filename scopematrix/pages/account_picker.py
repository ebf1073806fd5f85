"""The account picker: one row per account, with its Hub ID and name [R4][R36]. Skipped when the URL pins a
Hub ID. Its heading is unconfirmed (brief, open question 5), so a row showing the Hub ID counts too. Its
controls are unconfirmed as well (open question 12): links or buttons per row, rows to select (radio or
listbox) and then a confirm button, or a dropdown and a confirm button."""

from __future__ import annotations

import re
from enum import StrEnum

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage

PICKER_TITLE = re.compile(r"\b(choose|select|pick)\s+(an|your|a)\s+(HubSpot\s+)?account|which\s+account", re.I)
# Anything a person can click to choose a row.
CLICKABLE = "a[href], button, [role=button], [role=link], [role=menuitem], input[type=submit]"
ROW = "li, tr, [role=row], [role=listitem], div, section, label"
# What confirms a selection: "Choose account", "Continue", "Select", "Connect", "Next"…
CONFIRM = re.compile(r"^\s*(choose|select|continue|connect|next|confirm|use|go)\b", re.I)


class Choice(StrEnum):
    CHOSEN = "chosen"
    NOT_LISTED = "not listed"


class AccountPickerPage(BasePage):
    SCREEN = Screen.ACCOUNT_PICKER

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = page.get_by_text(PICKER_TITLE).filter(visible=True)
        self.clickables = page.locator(CLICKABLE).filter(visible=True)
        self.confirm = page.get_by_role("button", name=CONFIRM)

    def identity(self) -> Locator:
        return self.title

    def _choice(self, text: re.Pattern[str]) -> Locator:
        """The clickable for the row that shows `text`: the control itself, or the innermost row holding
        both the text and a control."""
        direct = self.clickables.filter(has_text=text)
        row = self.page.locator(ROW).filter(has_text=text).filter(has=self.clickables).last
        return direct.or_(row.locator(CLICKABLE).filter(visible=True)).first

    def _patterns(self, hub_id: int, name: str) -> list[re.Pattern[str]]:
        by_id = re.compile(rf"(?<!\d){hub_id}(?!\d)")
        return [by_id, re.compile(re.escape(name), re.I)] if name else [by_id]

    def row_for(self, hub_id: int, name: str = "") -> Locator:
        """A link or button per account."""
        first, *rest = [self._choice(p) for p in self._patterns(hub_id, name)]
        for other in rest:
            first = first.or_(other)
        return first.first

    def selectable_for(self, hub_id: int, name: str = "") -> Locator:
        """A row to select (a radio, or an option of a listbox) that names the account."""
        found = [
            self.page.get_by_role(role, name=p).filter(visible=True)
            for p in self._patterns(hub_id, name)
            for role in ("radio", "option")
        ]
        first, *rest = found
        for other in rest:
            first = first.or_(other)
        return first.first

    def dropdown_for(self, hub_id: int, name: str = "") -> Locator:
        """A dropdown (a select) with an option that names the account."""
        first, *rest = [
            self.page.locator("select").filter(has=self.page.get_by_text(p)) for p in self._patterns(hub_id, name)
        ]
        for other in rest:
            first = first.or_(other)
        return first.filter(visible=True).first

    async def lists(self, hub_id: int, name: str = "") -> bool:
        for found in (self.row_for(hub_id, name), self.selectable_for(hub_id, name), self.dropdown_for(hub_id, name)):
            if await found.count():
                return True
        return False

    async def choose(self, hub_id: int, name: str = "", patience_s: float = 3.0) -> Choice:
        """Pick the account (by Hub ID, or by name), then confirm where the picker asks for it. NOT_LISTED when
        it doesn't list the account; CannotAct when a control stays unusable (UI drift).

        Rows to select and dropdowns are looked for first: the form around them also holds the confirm
        button, which would otherwise pass for the row's own control."""
        await self.dismiss_cookie_banner()
        before = self.page.url
        selectable = self.selectable_for(hub_id, name)
        dropdown = self.dropdown_for(hub_id, name)
        if await selectable.count():
            await selectable.click()
        elif await dropdown.count():
            options = await dropdown.locator("option").all_text_contents()
            label = next(o for o in options if any(p.search(o) for p in self._patterns(hub_id, name)))
            await dropdown.select_option(label=label)
        else:
            row = self.row_for(hub_id, name)
            if not await row.count():
                return Choice.NOT_LISTED
            if await self.title.count():
                await self.click_away(row)
            else:  # a picker known only by its rows: wait for the page to move on
                await row.click()
                await self.page.wait_for_url(lambda url: url != before)
            return Choice.CHOSEN
        if self.page.url == before and await self.confirm.count():
            await self.act(self.confirm, patience_s, "the account picker's confirm button")
        await self.page.wait_for_url(lambda url: url != before)  # (an option that navigates by itself too)
        return Choice.CHOSEN
