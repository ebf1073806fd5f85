"""Shared page-object plumbing: the cookie banner and the page heading."""

from __future__ import annotations

from playwright.async_api import Locator, Page

from scopematrix.model import Screen


class BasePage:
    SCREEN: Screen = Screen.UNKNOWN

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", level=1).first
        # HubSpot's cookie banner, labelled "Accept all" / "Decline all" [R34].
        self._decline_cookies = page.get_by_role("button", name="Decline all")

    def identity(self) -> Locator:
        """The element whose presence says this is the screen."""
        raise NotImplementedError

    async def is_current(self) -> bool:
        return await self.identity().count() > 0

    async def heading_text(self) -> str:
        return (await self.heading.inner_text()).strip() if await self.heading.count() else ""

    async def dismiss_cookie_banner(self) -> None:
        if await self._decline_cookies.count() and await self._decline_cookies.first.is_visible():
            await self._decline_cookies.first.click()
            await self.page.wait_for_load_state("domcontentloaded")

    def secret_fields(self) -> list[Locator]:
        """Inputs to mask in screenshots."""
        return [self.page.locator("input[type=password]")]
