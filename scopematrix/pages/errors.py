"""Screens that end a flow without consent: connection errors, permission denials, approval, cancel."""

from __future__ import annotations

import re
from enum import StrEnum

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage


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


# Body texts from the brief's error-screen table (section 2d), old and new wordings, English and French.
_CAUSES: tuple[tuple[re.Pattern[str], ErrorCause], ...] = tuple(
    (re.compile(p, re.I), c)
    for p, c in (
        (r"invalid (app )?client_id|client_id d'application invalide", ErrorCause.BAD_CLIENT_ID),
        (r"redirect_uri doesn.t match|redirect URL .* doesn.t match", ErrorCause.REDIRECT_MISMATCH),
        (r"invalid scope name", ErrorCause.INVALID_SCOPE),
        (r"scopes are insufficient|insufficient scopes", ErrorCause.INSUFFICIENT_SCOPES),
        (r"mismatch between the scopes", ErrorCause.SCOPE_MISMATCH),
        (r"doesn.t have access to some HubSpot features", ErrorCause.ACCOUNT_LACKS_FEATURES),
        (r"acceptable use policy", ErrorCause.AUP_NOT_SIGNED),
        (r"install link is no longer valid", ErrorCause.STALE_LINK),
        (r"hasn.t been approved to access", ErrorCause.NOT_APPROVED),
    )
)


def cause_of(message: str) -> ErrorCause:
    return next((cause for pattern, cause in _CAUSES if pattern.search(message)), ErrorCause.UNKNOWN)


class _MessagePage(BasePage):
    """A screen that ends the flow with a heading and one message paragraph."""

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.body = page.locator('[data-test-id="error-message"]').first

    async def message(self) -> str:
        return await self.text_of(self.body)


class ConnectionErrorPage(_MessagePage):
    """All headed "Couldn't complete the connection" (apostrophe often typographic)."""

    SCREEN = Screen.CONNECTION_ERROR

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = page.get_by_role("heading", name=re.compile(r"Couldn.t complete the connection"))
        self.body = page.locator('[data-test-id="error-message"]').or_(page.locator("main p")).first

    def identity(self) -> Locator:
        return self.title

    async def cause(self) -> ErrorCause:
        return cause_of(await self.message())


class PermissionDeniedPage(_MessagePage):
    """The legacy "correct role" page [R15] or the 2026 page listing missing user permissions [R30]."""

    SCREEN = Screen.PERMISSION_DENIED

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.modern = page.get_by_role("heading", name=re.compile(r"You don.t have the right permissions"))
        self.legacy = page.get_by_text(re.compile(r"You do not have the correct role to grant these permissions"))
        self.permission_items = page.locator('[data-test-id="missing-permissions"] li')

    def identity(self) -> Locator:
        return self.modern.or_(self.legacy)

    async def generation(self) -> str:
        return "2026" if await self.modern.count() else "legacy"

    async def missing_permissions(self) -> list[str]:
        return [(await li.inner_text()).strip() for li in await self.permission_items.all()]


class ApprovalNeededPage(_MessagePage):
    """App Governance (beta, Apr 2026): non-admins must request approval [R22][R38]."""

    SCREEN = Screen.NEEDS_APPROVAL

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = page.get_by_role("heading", name=re.compile(r"Request approval", re.I))

    def identity(self) -> Locator:
        return self.title.or_(self.page.get_by_text(re.compile(r"hasn.t been approved to access")))


class CancelledPage(_MessagePage):
    SCREEN = Screen.CANCELLED

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.title = page.get_by_role("heading", name=re.compile(r"Connection cancelled", re.I))
        self.body = page.locator('[data-test-id="cancelled-message"]').first

    def identity(self) -> Locator:
        return self.title
