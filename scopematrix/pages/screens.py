"""Which hosted screen is showing: every page object's identity, waited for until one matches.

The decision "no page object knows this screen" is taken only once the page has settled (loaded, no
network traffic): a busy machine makes it slower, never different.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Literal
from weakref import WeakKeyDictionary

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
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


async def settle(page: Page, timeout_ms: float, quiet: bool = True) -> None:
    """Wait until the document has loaded and (`quiet`) the network is quiet, each wait bounded by
    `timeout_ms`: a page that never gets there is looked at anyway."""
    states: tuple[Literal["load", "networkidle"], ...] = ("load", "networkidle") if quiet else ("load",)
    for state in states:
        try:
            await page.wait_for_load_state(state, timeout=timeout_ms)
        except PlaywrightTimeoutError:
            return


LOGIN_TYPES: tuple[type[BasePage], ...] = (TwoFactorPage, RememberMePage, LoginPasswordPage, LoginEmailPage)


def identify(
    page: Page, grace_s: float, settle_ms: float | None = 15_000, expect: tuple[type[BasePage], ...] = ()
) -> Coroutine[Any, Any, BasePage | None]:
    """The page object for the current screen, or None when the settled page matches none.

    The identities are checked in order, most specific first, the `expect`ed ones (in that same order)
    before the others. When none shows yet, one wait in the browser for any of them; if none shows within
    `grace_s` (0: don't wait, the caller knows the page has loaded), the page is given time to settle
    (`settle_ms`; None: an unknown screen is expected, don't wait) and checked once more, in order. No
    polling, and on the screen the caller expects, one query.

    A sync page is refused here, at the call, not when (if ever) the coroutine is awaited.
    """
    require_async(page)
    return _identify(page, grace_s, settle_ms, expect)


# Every page object of a page, built once: the page is reused walk after walk, and locators are only descriptions.
_CANDIDATES: WeakKeyDictionary[Page, tuple[list[BasePage], Locator]] = WeakKeyDictionary()


def _candidates(page: Page) -> tuple[list[BasePage], Locator]:
    if page not in _CANDIDATES:
        objs = [cls(page) for cls in PAGE_TYPES]
        any_screen = objs[0].identity()
        for obj in objs[1:]:
            any_screen = any_screen.or_(obj.identity())
        _CANDIDATES[page] = (objs, any_screen)
    return _CANDIDATES[page]


async def _identify(
    page: Page, grace_s: float, settle_ms: float | None, expect: tuple[type[BasePage], ...]
) -> BasePage | None:
    candidates, any_screen = _candidates(page)
    if expect:
        candidates = sorted(candidates, key=lambda c: not isinstance(c, expect))  # (stable: the order holds)
    if grace_s > 0:
        try:
            # A loaded page mostly shows its screen already: look before waiting (a consent page costs one
            # query, where the query for any screen costs several times that in the renderer).
            found = await _first_current(candidates)
        except PlaywrightError:
            found = None  # the document changed under the query: wait for it below
        if found is not None:
            return found
        try:
            await any_screen.first.wait_for(state="attached", timeout=grace_s * 1000)
        except PlaywrightTimeoutError:
            pass
        else:
            return await _first_current(candidates)
    # No screen within the grace (or none asked for: the caller expects one it doesn't know, one query).
    if settle_ms is not None:
        await settle(page, settle_ms)
    try:
        if not await any_screen.count():
            return None
    except PlaywrightError:
        return None
    return await _first_current(candidates)


async def _first_current(candidates: list[BasePage]) -> BasePage | None:
    """The most specific screen showing. The checks are separate queries and a page may be drawn between two
    of them (a single-page app fills in its screen at once): a hit is checked against the more specific
    screens asked before it, so a denial is never taken for the generic heading drawn a moment earlier."""
    for i, obj in enumerate(candidates):  # most specific first: the first hit decides
        if await obj.is_current():
            for earlier in candidates[:i]:
                if await earlier.is_current():
                    return earlier
            return obj
    return None


def screen_of(obj: BasePage | None) -> Screen:
    return obj.SCREEN if obj is not None else Screen.UNKNOWN
