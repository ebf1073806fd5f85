"""Which hosted screen is showing: every page object's identity, waited for until one matches.

The decision "no page object knows this screen" is taken only once the page has settled (loaded, no
network traffic): a busy machine makes it slower, never different.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from scopematrix.model import Screen
from scopematrix.pages.account_picker import AccountPickerPage
from scopematrix.pages.base import BasePage, require_async
from scopematrix.pages.consent import ConsentPage
from scopematrix.pages.errors import (
    ApprovalNeededPage,
    CancelledPage,
    ConnectionErrorPage,
    PermissionDeniedPage,
)
from scopematrix.pages.login import LoginEmailPage, LoginPasswordPage, RememberMePage, TwoFactorPage

# Most specific first: a denial under the generic "Couldn't complete the connection" heading is a denial.
PAGE_TYPES: tuple[type[BasePage], ...] = (
    ConsentPage,
    PermissionDeniedPage,
    ApprovalNeededPage,
    ConnectionErrorPage,
    AccountPickerPage,
    TwoFactorPage,
    RememberMePage,
    LoginPasswordPage,
    LoginEmailPage,
    CancelledPage,
)


async def settle(page: Page, timeout_ms: float) -> None:
    """Wait until the document has loaded and the network is quiet (each wait bounded by `timeout_ms`)."""
    states: tuple[Literal["load", "networkidle"], ...] = ("load", "networkidle")
    for state in states:
        try:
            await page.wait_for_load_state(state, timeout=timeout_ms)
        except PlaywrightTimeoutError:
            return


def identify(page: Page, grace_s: float, settle_ms: float | None = 15_000) -> Coroutine[Any, Any, BasePage | None]:
    """The page object for the current screen, or None when the settled page matches none.

    One wait in the browser for any screen's identity; if none shows within `grace_s`, the page is
    given time to settle (`settle_ms`; None: an unknown screen is expected, don't wait) and checked once
    more. Then every identity is checked at once: no polling.

    A sync page is refused here, at the call, not when (if ever) the coroutine is awaited.
    """
    require_async(page)
    return _identify(page, grace_s, settle_ms)


async def _identify(page: Page, grace_s: float, settle_ms: float | None) -> BasePage | None:
    candidates = [cls(page) for cls in PAGE_TYPES]
    any_screen = candidates[0].identity()
    for obj in candidates[1:]:
        any_screen = any_screen.or_(obj.identity())
    try:
        await any_screen.first.wait_for(state="attached", timeout=grace_s * 1000)
    except PlaywrightTimeoutError:
        if settle_ms is not None:
            await settle(page, settle_ms)
        try:
            if not await any_screen.count():
                return None
        except PlaywrightError:
            return None
    hits = await asyncio.gather(*(obj.is_current() for obj in candidates))
    return next((obj for obj, hit in zip(candidates, hits, strict=True) if hit), None)


def screen_of(obj: BasePage | None) -> Screen:
    return obj.SCREEN if obj is not None else Screen.UNKNOWN
