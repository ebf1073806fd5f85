"""Screens that end a flow without consent: connection errors, permission denials, approval, cancel.

Each is recognised by the brief's texts (section 2d) wherever they sit: a heading or the body, straight
or typographic apostrophes, text split over nested elements.
"""

from __future__ import annotations

import re
from enum import StrEnum

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage, list_after, words


class ErrorCause(StrEnum):
    BAD_CLIENT_ID = "bad_client_id"
    REDIRECT_MISMATCH = "redirect_mismatch"
    INVALID_SCOPE = "invalid_scope"
    INSUFFICIENT_SCOPES = "insufficient_scopes"
    SCOPE_MISMATCH = "scope_mismatch"
    ACCOUNT_LACKS_FEATURES = "account_lacks_features"
    AUP_NOT_SIGNED = "aup_not_signed"
    STALE_LINK = "stale_link"
    NOT_APPROVED = "not_approved"
    UNKNOWN = "unknown"

    @property
    def app_configuration(self) -> bool:
        """HubSpot refused the install URL itself: nothing about the account or the user was decided."""
        return self in _APP_CONFIGURATION


_APP_CONFIGURATION = frozenset(
    {
        ErrorCause.BAD_CLIENT_ID,
        ErrorCause.REDIRECT_MISMATCH,
        ErrorCause.INVALID_SCOPE,
        ErrorCause.INSUFFICIENT_SCOPES,
        ErrorCause.SCOPE_MISMATCH,
        ErrorCause.AUP_NOT_SIGNED,
        ErrorCause.STALE_LINK,
    }
)

A = "['’‘`´′]"
# Body texts from the brief's error-screen table (section 2d), old and new wordings, English and French.
_CAUSES: tuple[tuple[re.Pattern[str], ErrorCause], ...] = tuple(
    (re.compile(p, re.I), c)
    for p, c in (
        (r"invalid\s+(app\s+)?client_?id|client_id\s+d.application\s+invalide", ErrorCause.BAD_CLIENT_ID),
        (rf"redirect_?uri\s+doesn{A}?t\s+match|redirect\s+URL\s.*doesn{A}?t\s+match", ErrorCause.REDIRECT_MISMATCH),
        (r"invalid\s+scope\s+name", ErrorCause.INVALID_SCOPE),
        (r"scopes\s+are\s+insufficient|insufficient\s+scopes", ErrorCause.INSUFFICIENT_SCOPES),
        (r"mismatch\s+between\s+the\s+scopes", ErrorCause.SCOPE_MISMATCH),
        (rf"doesn{A}?t\s+have\s+access\s+to\s+some\s+HubSpot\s+features", ErrorCause.ACCOUNT_LACKS_FEATURES),
        (r"acceptable\s+use\s+policy", ErrorCause.AUP_NOT_SIGNED),
        (r"install\s+link\s+is\s+no\s+longer\s+valid", ErrorCause.STALE_LINK),
        (rf"hasn{A}?t\s+been\s+approved\s+to\s+access", ErrorCause.NOT_APPROVED),
    )
)
CONNECTION_TITLE = words("Couldn't complete the connection")
PERMISSIONS_2026 = words("You don't have the right permissions")
PERMISSIONS_LEGACY = words("You do not have the correct role")
NOT_APPROVED = words("hasn't been approved to access")
REQUEST_APPROVAL = re.compile(r"^\s*Request\s+approval\b", re.I)
CANCELLED = words("Connection cancelled")


# Any of the body texts: a screen that shows one is an error screen, whatever its heading.
ANY_CAUSE = re.compile("|".join(f"(?:{p.pattern})" for p, _ in _CAUSES), re.I)


def cause_of(message: str) -> ErrorCause:
    return next((cause for pattern, cause in _CAUSES if pattern.search(message)), ErrorCause.UNKNOWN)


def _visible_text(page: Page, pattern: re.Pattern[str]) -> Locator:
    return page.get_by_text(pattern).filter(visible=True)


class ConnectionErrorPage(BasePage):
    """All headed "Couldn't complete the connection" (apostrophe often typographic)."""

    SCREEN = Screen.CONNECTION_ERROR

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = _visible_text(page, CONNECTION_TITLE)
        self.reason = _visible_text(page, ANY_CAUSE)

    def identity(self) -> Locator:
        return self.title.or_(self.reason)

    async def message(self) -> str:
        """The sentence that says why: the line naming a known cause, else the first one after the title."""
        lines = await self.lines()
        known = next((line for line in lines if cause_of(line) is not ErrorCause.UNKNOWN), None)
        if known is not None:
            return known
        after = list_after(lines, CONNECTION_TITLE, set())
        rest = [line for line in lines if not CONNECTION_TITLE.search(line)]
        return (after or rest or [""])[0]

    async def cause(self) -> ErrorCause:
        return cause_of(" ".join(await self.lines()))


class PermissionDeniedPage(BasePage):
    """The legacy "correct role" page [R15] or the 2026 page listing missing user permissions [R30]."""

    SCREEN = Screen.PERMISSION_DENIED

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.modern = _visible_text(page, PERMISSIONS_2026)
        self.legacy = _visible_text(page, PERMISSIONS_LEGACY)

    def identity(self) -> Locator:
        return self.modern.or_(self.legacy)

    async def generation(self) -> str:
        return "2026" if await self.modern.count() else "legacy"

    async def message(self) -> str:
        lines = await self.lines()
        return next((line for line in lines if PERMISSIONS_2026.search(line) or PERMISSIONS_LEGACY.search(line)), "")

    async def missing_permissions(self) -> list[str]:
        """The list after the 2026 sentence, however it is drawn (list items, divs, line breaks)."""
        if await self.generation() != "2026":
            return []
        return list_after(await self.lines(), PERMISSIONS_2026, await self.button_labels())


class ApprovalNeededPage(BasePage):
    """App Governance (beta, Apr 2026): non-admins must request approval [R22][R38]."""

    SCREEN = Screen.NEEDS_APPROVAL

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.reason = _visible_text(page, NOT_APPROVED)
        self.request = page.get_by_role("button", name=REQUEST_APPROVAL).or_(
            page.get_by_role("link", name=REQUEST_APPROVAL)
        )

    def identity(self) -> Locator:
        return self.reason.or_(self.request)

    async def message(self) -> str:
        lines = await self.lines()
        return next((line for line in lines if NOT_APPROVED.search(line)), lines[0] if lines else "")


class CancelledPage(BasePage):
    SCREEN = Screen.CANCELLED

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = _visible_text(page, CANCELLED)

    def identity(self) -> Locator:
        return self.title
