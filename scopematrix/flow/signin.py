"""One login: HubSpot's login screens walked, in a fresh context that is never traced, to a signed-in
storage state. Credentials are typed only into the configured HubSpot origins. The signed-in page is
handed over for walks (the user's first page), not closed: a new one would cost a context and a renderer."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pyotp
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from scopematrix.flow.browsing import Contexts, Navigations, WalkWatch
from scopematrix.flow.evidence import Evidence
from scopematrix.flow.records import FlowOptions, LoginFailure, StorageState, flag_decisive, slug
from scopematrix.model import Capture, Outcome
from scopematrix.pages.base import BasePage
from scopematrix.pages.login import LoginEmailPage, LoginPasswordPage, RememberMePage, TwoFactorPage
from scopematrix.pages.screens import LOGIN_TYPES, identify, settle
from scopematrix.target import Target, origin_of


@dataclass(frozen=True)
class SignedIn:
    """A login that HubSpot accepted: the storage state, and the page that signed in (its own context)."""

    state: StorageState
    context: BrowserContext
    page: Page


class SignIn:
    def __init__(self, target: Target, options: FlowOptions, contexts: Contexts, evidence: Evidence) -> None:
        self.target = target
        self.options = options
        self.contexts = contexts
        self.evidence = evidence

    async def once(self, user_id: str, navigations: Navigations) -> SignedIn | LoginFailure:
        creds = self.target.credentials[user_id]
        redact = self.evidence.redact
        folder = self.evidence.run_dir / "logins" / slug(user_id)
        captures: list[Capture] = []
        context = await self.contexts.new(None)
        handed_over = False
        try:
            page = await context.new_page()
            page.on("request", navigations)
            watch = WalkWatch()
            page.on("response", watch.on_response)
            page.on("requestfailed", watch.on_failed)
            await BasePage.handle_overlays(page)
            await page.goto(self.target.app_url + "/login", wait_until="domcontentloaded")
            for _ in range(self.options.max_steps):
                # Past /login the account's home page shows, which no page object knows: once it has loaded,
                # one look decides (no waiting for it to settle: HubSpot's home may never go quiet).
                left_login = not urlsplit(page.url).path.startswith("/login")
                if left_login:
                    await settle(page, self.options.timeout_ms, quiet=False)
                obj = await identify(page, 0 if left_login else self.options.grace_s,
                                     None if left_login else self.options.timeout_ms, expect=LOGIN_TYPES)  # fmt: skip
                if isinstance(obj, LoginEmailPage | LoginPasswordPage | TwoFactorPage):
                    where = origin_of(page.url)
                    if where not in self.target.login_origins():
                        # Never type a credential into a page HubSpot didn't serve.
                        message = f"login page on {redact(where)}, not a configured HubSpot origin: nothing typed"
                        return LoginFailure(message, tuple(captures), Outcome.ERROR)
                    error = await obj.error_text()
                    if error:
                        await self.evidence.capture(obj, page, folder, captures)
                        return LoginFailure(redact(error), flag_decisive(captures))
                if isinstance(obj, LoginEmailPage):
                    await obj.submit_email(creds.email)
                elif isinstance(obj, LoginPasswordPage):
                    await obj.submit_password(creds.password, creds.email)
                elif isinstance(obj, TwoFactorPage):
                    if not creds.totp_secret:
                        await self.evidence.capture(obj, page, folder, captures)
                        message = "2FA code requested but no TOTP secret is configured"
                        return LoginFailure(message, flag_decisive(captures))
                    await obj.submit_code(pyotp.TOTP(creds.totp_secret).now())
                elif isinstance(obj, RememberMePage):
                    await obj.skip_for_now()
                elif not left_login:
                    # Still on /login and no login screen we know: an outage, or HubSpot changed its page.
                    outage = watch.outage()
                    if outage is not None:
                        return LoginFailure(f"{outage} on the login page", tuple(captures), Outcome.ERROR)
                    await self.evidence.capture(None, page, folder, captures)
                    html = await self.evidence.save_html(page, folder)
                    where = redact(page.url.split("?")[0])
                    return LoginFailure(f"unknown screen during login at {where}", flag_decisive(captures),
                                        Outcome.UNRECOGNIZED, html)  # fmt: skip
                else:
                    # Signed in only where HubSpot says so: its own origin, a page that arrived whole.
                    where, outage = origin_of(page.url), watch.outage()
                    if where not in self.target.login_origins():
                        return LoginFailure(f"login ended on {redact(where)}, not a configured HubSpot origin",
                                            tuple(captures), Outcome.ERROR)  # fmt: skip
                    if outage is not None:
                        return LoginFailure(f"{outage} after login", tuple(captures), Outcome.ERROR)
                    state: StorageState = await context.storage_state()  # type: ignore[assignment]
                    # The page is a walk's from here: the login's counts stop.
                    page.remove_listener("request", navigations)
                    page.remove_listener("response", watch.on_response)
                    page.remove_listener("requestfailed", watch.on_failed)
                    handed_over = True
                    return SignedIn(state, context, page)
            # Screens that keep coming back: HubSpot bounced the login, it never refused it.
            return LoginFailure("login did not finish: the login screens kept coming back", tuple(captures),
                                Outcome.ERROR)  # fmt: skip
        except PlaywrightError as exc:
            return LoginFailure(redact(f"login failed: {exc.message.splitlines()[0]}"), tuple(captures), Outcome.ERROR)
        finally:
            if not handed_over:
                await context.close()
