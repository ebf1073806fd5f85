"""Shared page-object plumbing: the cookie banner and the page heading."""

from __future__ import annotations

import asyncio

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

    @staticmethod
    async def text_of(locator: Locator) -> str:
        """The element's text, or "" when the screen doesn't have it."""
        return (await locator.inner_text()).strip() if await locator.count() else ""

    async def heading_text(self) -> str:
        return await self.text_of(self.heading)

    async def click_away(self, button: Locator, unless: Locator | None = None) -> None:
        """Click, then wait until this screen is gone, or until `unless` (say, an error) shows.

        Waiting for a load state is not enough: it returns at once while the old document is still
        there, and the next screen would be mistaken for this one. This works for single-page apps too.
        """
        await button.click()
        waits = [asyncio.ensure_future(self.identity().first.wait_for(state="detached"))]
        if unless is not None:
            waits.append(asyncio.ensure_future(unless.first.wait_for(state="visible")))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()

    async def dismiss_cookie_banner(self) -> None:
        if await self._decline_cookies.count() and await self._decline_cookies.first.is_visible():
            await self._decline_cookies.first.click()
            await self._decline_cookies.first.wait_for(state="detached")

    def secret_fields(self) -> list[Locator]:
        """Inputs to mask in screenshots."""
        return [self.page.locator("input[type=password]")]
