"""Which hosted screen is showing: every page object's identity, polled until one matches."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from scopematrix.model import Screen
from scopematrix.pages.account_picker import AccountPickerPage
from scopematrix.pages.base import BasePage
from scopematrix.pages.consent import ConsentPage
from scopematrix.pages.errors import (
    ApprovalNeededPage,
    CancelledPage,
    ConnectionErrorPage,
    PermissionDeniedPage,
)
from scopematrix.pages.login import LoginEmailPage, LoginPasswordPage, RememberMePage, TwoFactorPage

# Most specific first: a denial page must not be mistaken for a generic error.
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


async def identify(page: Page, grace_s: float) -> BasePage | None:
    """The page object for the current screen, or None when nothing matches within `grace_s`.

    One wait in the browser for any screen's identity, then every identity checked at once: no polling.
    """
    candidates = [cls(page) for cls in PAGE_TYPES]
    any_screen = candidates[0].identity()
    for obj in candidates[1:]:
        any_screen = any_screen.or_(obj.identity())
    try:
        await any_screen.first.wait_for(state="attached", timeout=grace_s * 1000)
    except PlaywrightTimeoutError:
        return None
    hits = await asyncio.gather(*(obj.is_current() for obj in candidates))
    return next((obj for obj, hit in zip(candidates, hits, strict=True) if hit), None)


def screen_of(obj: BasePage | None) -> Screen:
    return obj.SCREEN if obj is not None else Screen.UNKNOWN
