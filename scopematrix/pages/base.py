"""Shared page-object plumbing: text patterns, page text as lines, the cookie banner, leaving a screen.

Screens are recognised by what a person reads (the brief's texts, accessible roles and names), never by
one renderer's tags, test ids or nesting: HubSpot renders differently from our simulator.
"""

from __future__ import annotations

import asyncio
import re
from weakref import WeakSet

from playwright.async_api import Locator, Page, expect

from scopematrix.model import Screen

APOSTROPHE = "['’‘`´′]"


def words(text: str) -> re.Pattern[str]:
    """A case-insensitive pattern for a phrase: any whitespace between words, any apostrophe."""
    parts = ["".join(APOSTROPHE if c in "'’" else re.escape(c) for c in w) for w in text.split()]
    return re.compile(r"\s+".join(parts), re.I)


def any_of(first: Locator, *others: Locator) -> Locator:
    """The first visible match of any of these locators (one selector generation or another)."""
    for other in others:
        first = first.or_(other)
    return first.filter(visible=True).first


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


class SyncPageError(TypeError):
    """A page object was handed pytest-playwright's sync `page`: its calls would return coroutines that
    nobody awaits, and a test would pass having checked nothing."""


def require_async(page: object) -> None:
    """Refuse anything but an async Playwright page, at once and by name."""
    if not isinstance(page, Page):
        kind = f"{type(page).__module__}.{type(page).__qualname__}"
        raise SyncPageError(
            f"scopematrix page objects drive Playwright's async API, and got a {kind}. "
            "Fix: use the `authorize` or `signed_in_page` fixtures from a sync test, "
            "or pass a playwright.async_api.Page."
        )


class CannotAct(Exception):
    """A known screen whose control can't be used (nothing to click, a control that stays disabled): HubSpot's
    page changed and the page objects need updating. Never a network wait, never an outage."""


class BasePage:
    SCREEN: Screen = Screen.UNKNOWN

    def __init__(self, page: Page) -> None:
        require_async(page)
        self.page = page
        self.body = page.locator("body")
        # HubSpot's cookie banner, labelled "Accept all" / "Decline all" [R34].
        self._decline_cookies = page.get_by_role("button", name="Decline all")
        self._buttons = page.get_by_role("button")
        self._leaves = page.locator("body *:not(:has(*)):not(script, style, template, noscript)")

    def identity(self) -> Locator:
        """What says this is the screen: visible text or a named control."""
        raise NotImplementedError

    async def is_current(self) -> bool:
        return await self.identity().count() > 0

    @staticmethod
    async def text_of(locator: Locator) -> str:
        """The element's text, or "" when the screen doesn't have it."""
        return normalise(await locator.first.inner_text()) if await locator.count() else ""

    async def heading_text(self) -> str:
        """The screen's title: its identifying text where that is a sentence-sized element."""
        return (await self.text_of(self.identity()))[:200]

    async def lines(self) -> list[str]:
        """The page's visible text, one entry per rendered line (block, list item or line break)."""
        raw = await self.body.inner_text() if await self.body.count() else ""
        return [line for line in (normalise(x) for x in raw.splitlines()) if line]

    async def element_texts(self) -> list[str]:
        """The text of every innermost element, rendered or not (a collapsed section's too): what `lines`
        can't separate, such as a word glued to the next element's text."""
        texts = await self._leaves.all_text_contents()
        return [t for t in (normalise(x) for x in texts) if t]

    async def button_labels(self) -> set[str]:
        return {normalise(t) for t in await self._buttons.all_inner_texts()}

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

    async def act(self, control: Locator, patience_s: float, what: str) -> None:
        """Click `control` once it shows and is enabled; one that doesn't within `patience_s` is UI drift
        (CannotAct), not a 30 s click timeout."""
        target = control.filter(visible=True).first
        try:
            await expect(target).to_be_enabled(timeout=patience_s * 1000)
        except AssertionError:
            state = "is not on the page" if not await control.count() else "stays disabled"
            raise CannotAct(f"{what} {state}") from None
        await target.click()

    @staticmethod
    async def handle_overlays(page: Page) -> None:
        """A cookie banner that arrives late, as a modal over the page, is declined whenever it shows up
        before an action (it would take the click)."""
        if page not in _BANNER_HANDLED:
            await page.add_locator_handler(page.get_by_role("button", name="Decline all"), _decline)
            _BANNER_HANDLED.add(page)

    async def dismiss_cookie_banner(self) -> None:
        if self.page in _BANNER_HANDLED:
            return  # declined by the page's handler before any action (clicking it here too would race it)
        shown = self._decline_cookies.filter(visible=True).first
        if await shown.count():  # (one query: most screens have no banner)
            await shown.click()
            await self._decline_cookies.first.wait_for(state="detached")

    def secret_fields(self) -> list[Locator]:
        """Inputs to mask in screenshots."""
        return [self.page.locator("input[type=password]")]

    async def masks(self) -> list[Locator]:
        """The secret fields on the page now: a mask costs a repaint (about 40 ms of the browser's CPU a
        screenshot) even where nothing matches, and the screens after login have no such field."""
        return [field for field in self.secret_fields() if await field.count()]


# Pages whose cookie banner a locator handler declines (handle_overlays).
_BANNER_HANDLED: WeakSet[Page] = WeakSet()


async def _decline(button: Locator) -> None:
    await button.first.click()


def list_after(lines: list[str], anchor: re.Pattern[str], stop: set[str]) -> list[str]:
    """The list that follows a sentence: the short lines after the line matching `anchor`.

    Works for ul/ol items, divs and line breaks alike. Sentences (ending in '.') before the list are
    explanations and are skipped; one after it, or a button label, ends it.
    """
    start = next((i for i, line in enumerate(lines) if anchor.search(line)), None)
    if start is None:
        return []
    items: list[str] = []
    for line in lines[start + 1 :]:
        if line in stop:
            break
        sentence = line.endswith((".", "!", "?", ":")) or len(line) > 90
        if sentence:
            if items:
                break
            continue
        items.append(re.sub(r"^(?:[•·*\-–]|\d+[.)])\s*", "", line))
    return items
