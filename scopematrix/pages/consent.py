"""The consent screen: app, account, scopes to grant, "Connect app" (current) or "Grant access" (older)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage, normalise
from scopematrix.rules.catalog import CATALOG

CONSENT_BUTTON = re.compile(r"^\s*(Connect\s+app|Grant\s+access)\s*$", re.I)


def _shown(scope: str, lines: Sequence[str]) -> bool:
    """A scope is shown when a line is its documented description, or names it. Plain-word legacy names
    ("forms", "files") count only as a line of their own: "Files uploaded through forms" is not `forms`."""
    spec = CATALOG.get(scope)
    description = normalise(spec.grants).lower() if spec else None
    distinctive = any(c in scope for c in "._-")
    token = re.compile(rf"(?<![\w.-]){re.escape(scope)}(?![\w.-])", re.I)
    for line in lines:
        low = line.lower()
        if low == scope.lower() or (description is not None and low == description):
            return True
        if description is not None and description in low and token.search(line):
            return True  # "its description (its id)"
        if distinctive and token.search(line):
            return True
    return False


class ConsentPage(BasePage):
    SCREEN = Screen.CONSENT

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.connect = page.get_by_role("button", name=CONSENT_BUTTON)
        self.cancel_button = page.get_by_role("button", name=re.compile(r"^\s*Cancel\s*$", re.I))

    def identity(self) -> Locator:
        return self.connect

    async def heading_text(self) -> str:
        """The page's heading where it has one, else its first line of text."""
        heading = await self.text_of(self.page.get_by_role("heading").filter(visible=True))
        lines = await self.lines()
        return (heading or (lines[0] if lines else ""))[:200]

    async def button_label(self) -> str:
        return normalise(await self.connect.first.inner_text())

    async def scopes_shown(self, required: Sequence[str], optional: Sequence[str]) -> tuple[str, ...] | None:
        """The requested scopes the page shows, or None when its scope list can't be read.

        Scopes are looked for in the visible lines and in the text of every innermost element, shown or
        collapsed: an id in an element of its own, glued to its description with no space between them,
        still counts. The list counts as read only when every required scope (but `oauth`, which HubSpot adds itself) is
        found: only then does a missing optional scope mean HubSpot dropped it (brief, open question 5).
        """
        texts = [*await self.lines(), *await self.element_texts()]
        shown = tuple(s for s in dict.fromkeys((*required, *optional)) if _shown(s, texts))
        must = [s for s in required if s != "oauth"]
        return shown if must and all(s in shown for s in must) else None

    async def approve(self, patience_s: float = 3.0) -> None:
        await self.dismiss_cookie_banner()
        await self.act(self.connect, patience_s, f"the consent button ({CONSENT_BUTTON.pattern})")

    async def cancel(self) -> None:
        await self.dismiss_cookie_banner()
        await self.click_away(self.cancel_button)
