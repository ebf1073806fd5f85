"""The multi-step login: email, password, TOTP 2FA, remember-me [R34][R35][R36].

Each field is found by its test id from the brief's selector generations, or else by what it is (an
email or password input, a one-time-code input, its label), so a new markup doesn't lock us out.
"""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

from scopematrix.model import Screen
from scopematrix.pages.base import BasePage, any_of, words

LOGIN_ERRORS = re.compile(
    "|".join(
        p.pattern
        for p in (
            words("isn't right"),
            words("doesn't look right"),
            words("has been deactivated"),
            words("enter a valid email"),
        )
    ),
    re.I,
)
NEXT = re.compile(r"^\s*(Next|Continue)\s*$", re.I)
LOG_IN = re.compile(r"^\s*(Log\s*in|Sign\s*in)\s*$", re.I)
VERIFY = re.compile(r"^\s*(Verify|Confirm|Submit|Continue|Next|Log\s*in|Sign\s*in)\s*$", re.I)
SKIP = re.compile(r"^\s*(Skip\s+for\s+now|Not\s+now|No\s+thanks|Don.t\s+remember|Skip)\s*$", re.I)


class _LoginStep(BasePage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.error = (
            page.locator('[data-test-id="login-error"]')
            .or_(page.get_by_role("alert"))
            .or_(page.get_by_text(LOGIN_ERRORS))
            .filter(visible=True)
        )

    async def error_text(self) -> str:
        return await self.text_of(self.error)

    async def submit(self, field: Locator, value: str, button: Locator) -> None:
        """Fill one field and press its button: every login step is this."""
        await self.dismiss_cookie_banner()
        await field.fill(value)
        await self.click_away(button, unless=self.error)


class LoginEmailPage(_LoginStep):
    SCREEN = Screen.LOGIN_EMAIL

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        # Current multi-step login, the 2019-21 single form (#username) [R32], or any email input.
        self.email = any_of(
            page.locator('[data-test-id="email-input-field"]'),
            page.locator("input#username"),
            page.locator("input[type=email]"),
            page.get_by_label(re.compile(r"^\s*Email( address)?\s*$", re.I)),
        )
        self.next_button = any_of(
            page.locator('[data-test-id="email-submit-button"]'),
            page.locator("#loginBtn"),
            page.get_by_role("button", name=NEXT),
            page.get_by_role("button", name=LOG_IN),
        )

    def identity(self) -> Locator:
        return self.email

    async def submit_email(self, email: str) -> None:
        await self.submit(self.email, email, self.next_button)


class LoginPasswordPage(_LoginStep):
    SCREEN = Screen.LOGIN_PASSWORD

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.password = any_of(
            page.locator('[data-test-id="password-input-field"]'), page.locator("input[type=password]")
        )
        self.login_button = any_of(
            page.locator('[data-test-id="password-login-submit"]'),
            page.locator('[data-test-id="password-login-button"]'),
            page.locator("#loginBtn"),
            page.get_by_role("button", name=LOG_IN),
        )

    def identity(self) -> Locator:
        return self.password

    async def submit_password(self, password: str, email: str = "") -> None:
        """Password and log in; on a single-form login (the 2019-21 generation) the email first."""
        login_email = LoginEmailPage(self.page).email
        if email and await login_email.count() and not await login_email.input_value():
            await login_email.fill(email)
        await self.submit(self.password, password, self.login_button)


class TwoFactorPage(_LoginStep):
    SCREEN = Screen.LOGIN_2FA

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.code = any_of(
            page.locator('[data-test-id="two-factor-code-input"]'),
            page.locator("input#code"),
            page.locator("input[autocomplete=one-time-code]"),
            page.get_by_label(re.compile(r"\bcode\b", re.I)),
        )
        self.verify_button = any_of(
            page.locator('[data-test-id="2fa-code-submit"]'),
            page.locator('[data-test-id="confirm-to-login-submit"]'),
            page.get_by_role("button", name=VERIFY),
        )

    def identity(self) -> Locator:
        return self.code

    def secret_fields(self) -> list[Locator]:
        return [*super().secret_fields(), self.code]

    async def submit_code(self, code: str) -> None:
        await self.submit(self.code, code, self.verify_button)


class RememberMePage(_LoginStep):
    SCREEN = Screen.LOGIN_REMEMBER

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.remember = page.locator('[data-test-id="2fa-remember-me-button"]').or_(
            page.get_by_role("button", name=re.compile(r"^\s*Remember\s+(me|this\s+device)\s*$", re.I))
        )
        self.skip = page.get_by_role("button", name=SKIP).or_(page.locator('button[data-2fa-rememberme="false"]'))

    def identity(self) -> Locator:
        return self.remember.or_(self.skip).filter(visible=True)

    async def skip_for_now(self) -> None:
        await self.click_away(self.skip.first)
