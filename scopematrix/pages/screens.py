"""Which hosted screen is showing: every page object's identity, polled until one matches."""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import Page

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
    """The page object for the current screen, or None when nothing matches within `grace_s`."""
    deadline = time.monotonic() + grace_s
    while True:
        for cls in PAGE_TYPES:
            obj = cls(page)
            if await obj.is_current():
                return obj
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)


def screen_of(obj: BasePage | None) -> Screen:
    return obj.SCREEN if obj is not None else Screen.UNKNOWN
