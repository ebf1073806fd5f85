"""One pass through the hosted screens, from the authorize URL to a decision: identify the screen, act on it
(pick the account, approve consent), read what decides the outcome. With login (signin.py) the only
place that calls page objects."""

from __future__ import annotations

import asyncio
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import BrowserContext, Page, Request, Response, Route
from playwright.async_api import Error as PlaywrightError

from scopematrix.flow.browsing import WalkWatch, document_response, main_frame_navigation
from scopematrix.flow.evidence import Evidence
from scopematrix.flow.install import TokenClient, TokenTrouble
from scopematrix.flow.records import (
    FlowOptions,
    LoginFailure,
    StorageState,
    Walk,
    WalkPlan,
    authorize_url,
    classify_error,
    consent_outcome,
    flag_decisive,
)
from scopematrix.flow.sessions import Sessions
from scopematrix.model import Outcome, Screen
from scopematrix.pages.account_picker import AccountPickerPage, Choice
from scopematrix.pages.base import BasePage, CannotAct
from scopematrix.pages.consent import ConsentPage
from scopematrix.pages.errors import ApprovalNeededPage, ConnectionErrorPage, ErrorCause, PermissionDeniedPage
from scopematrix.pages.screens import identify, screen_of, settle
from scopematrix.target import Target, origin_of

ISOLATION_HEADER = "X-Scopematrix-Isolation"
REDIRECT_PAGE = "<html><head><title>Redirect captured</title></head><body><h1>Redirect captured</h1></body></html>"
LOGIN_SCREENS = (Screen.LOGIN_EMAIL, Screen.LOGIN_PASSWORD, Screen.LOGIN_2FA, Screen.LOGIN_REMEMBER)


class Walker:
    """Walks plans in signed-in pages of the user's; the redirect to the app's redirect_uri ends a walk inside
    the browser (no callback server: the code never leaves this process)."""

    def __init__(
        self, target: Target, options: FlowOptions, sessions: Sessions, evidence: Evidence, tokens: TokenClient
    ) -> None:
        self.target = target
        self.options = options
        self.sessions = sessions
        self.evidence = evidence
        self.redact = evidence.redact
        self.tokens = tokens
        self._redirects: dict[Page, asyncio.Future[str]] = {}
        self._watches: dict[Page, WalkWatch] = {}
        # Every app's redirect_uri: the browser's redirect there carries the code and ends the flow.
        self._redirect_re = re.compile(
            "^(?:" + "|".join(re.escape(a.redirect_uri) for a in target.apps.values() if a.redirect_uri) + ")"
        )

    async def prepare(self, context: BrowserContext, page: Page) -> None:
        """A new page of the pool, set up once for every walk it will serve."""
        # A regex is matched by the driver; a Python predicate would intercept every request.
        await context.route(self._redirect_re, self._on_redirect)
        # Listeners once per page, not per walk: each subscription change is a round trip to the driver.
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)
        await BasePage.handle_overlays(page)

    async def walk(self, plan: WalkPlan) -> Walk:
        walk: Walk | None = None
        for force in (False, True):  # the second pass: the saved session expired, log in again once
            state = await self.sessions.login(plan.user_id, force=force)
            if isinstance(state, LoginFailure):
                return state.as_walk()
            walk = await self._walk_once(plan, state)
            if not walk.needs_login:
                return walk
        assert walk is not None
        # Signed in, then sent to the login again: a bounce loop is trouble, not HubSpot refusing the user.
        walk.outcome = Outcome.ERROR
        walk.message = walk.error = "HubSpot asked for a login again right after login"
        return walk

    # -- the page's network events ---------------------------------------------------------------------------

    async def _on_redirect(self, route: Route) -> None:
        self._redirected(route.request.frame.page, route.request.url)
        await route.fulfill(status=200, content_type="text/html", body=REDIRECT_PAGE)

    def _on_request(self, request: Request) -> None:
        watch = self._watches.get(request.frame.page) if main_frame_navigation(request) else None
        if watch is None:
            return
        watch.navigations += 1
        # The headless shell never hands a redirect (302) to the route above: read it from the request.
        if self._redirect_re.match(request.url):
            self._redirected(request.frame.page, request.url)

    def _on_response(self, response: Response) -> None:
        watch = self._watches.get(response.frame.page) if document_response(response) else None
        if watch is not None:
            watch.on_response(response)

    def _on_failed(self, request: Request) -> None:
        watch = self._watches.get(request.frame.page) if request.resource_type == "document" else None
        if watch is not None:
            watch.on_failed(request)

    def _redirected(self, page: Page, url: str) -> None:
        future = self._redirects.get(page)
        if future is not None and not future.done():
            future.set_result(url)

    # -- one walk --------------------------------------------------------------------------------------------

    async def _walk_once(self, plan: WalkPlan, state: StorageState) -> Walk:
        expected_state = secrets.token_urlsafe(16)
        self.redact.add([expected_state])
        url = authorize_url(self.target, plan, self.options.pinned, expected_state)
        captured: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        watch = WalkWatch()
        walk = Walk(Outcome.ERROR)
        video_dir = plan.folder / ".video" if plan.video and plan.folder is not None else None
        fresh = plan.tracing or video_dir is not None
        pool = self.sessions.pool
        context, page = await pool.lease(plan.user_id, state, fresh, video_dir)
        self._redirects[page] = captured
        self._watches[page] = watch
        if plan.tracing:
            await context.tracing.start(screenshots=True, snapshots=True)
        try:
            headers = {ISOLATION_HEADER: plan.namespace} if plan.namespace and self.target.isolation else {}
            await page.set_extra_http_headers(headers)
            await page.goto(url, wait_until="domcontentloaded")
            walk = await self._steps(page, plan, captured, expected_state, watch)
        except (PlaywrightError, httpx.HTTPError, TimeoutError, OSError) as exc:
            first = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).splitlines()[0]
            walk.outcome, walk.error = Outcome.ERROR, self.redact(first)
            walk.message = walk.message or walk.error
        finally:
            self._redirects.pop(page, None)
            self._watches.pop(page, None)
            walk.navigations = watch.navigations
            if plan.tracing and plan.folder is not None:
                keep = self.options.tracing == "on" or walk.outcome.infrastructure
                await self.evidence.stop_tracing(context, plan.folder, keep=keep)
            # After trouble the page may be in any state: don't hand it to the next walk.
            reusable = not fresh and not walk.outcome.infrastructure and not walk.needs_login
            await pool.give_back(plan.user_id, context, page, reusable)
            if video_dir is not None:
                keep = self.options.video == "on" or walk.outcome.infrastructure
                await self.evidence.keep_video(page, video_dir, keep=keep)
        return walk

    async def _steps(
        self, page: Page, plan: WalkPlan, captured: asyncio.Future[str], expected_state: str, watch: WalkWatch
    ) -> Walk:
        walk = Walk(Outcome.UNRECOGNIZED)
        for _ in range(self.options.max_steps):
            obj = await identify(page, self.options.grace_s, self.options.timeout_ms)
            if isinstance(obj, ConnectionErrorPage) and await obj.cause() is ErrorCause.UNKNOWN:
                # The generic heading with no cause yet: a page still being drawn says why once it has settled.
                await settle(page, self.options.timeout_ms)
                obj = await identify(page, self.options.grace_s, self.options.timeout_ms)
            if obj is None and not self.options.pinned:
                picker = AccountPickerPage(page)
                if await picker.lists(plan.hub_id, plan.account_name):
                    obj = picker  # a picker whose heading we don't know, but that lists the account
            # The screenshot is taken while the screen is read (both only look); acting on the screen waits for it.
            shot = asyncio.ensure_future(self.evidence.capture(obj, page, plan.folder, walk.captures))
            try:
                decided = await self._read(obj, page, plan, walk, watch)
            finally:
                await shot
            try:
                if not decided:  # the account picker: choose the account, then the next screen
                    assert isinstance(obj, AccountPickerPage)
                    choice = await obj.choose(plan.hub_id, plan.account_name, self.options.grace_s)
                    if choice is Choice.NOT_LISTED:
                        walk.outcome = Outcome.UNRECOGNIZED
                        walk.message = f"the account picker does not list {plan.hub_id}"
                        break
                    continue
                if isinstance(obj, ConsentPage) and plan.approve:
                    await obj.approve(self.options.grace_s)
                    await self._finish_install(walk, plan, captured, expected_state)
            except CannotAct as exc:
                # HubSpot's screen is known but our page object can't use it: fail fast and loud (exit 4).
                walk.outcome, walk.message = (
                    Outcome.UNRECOGNIZED,
                    f"cannot act on the {screen_of(obj).value} screen: {exc}",
                )
                walk.drift = True
            break
        else:
            walk.outcome, walk.message = Outcome.UNRECOGNIZED, "too many screens without a decision"
        if walk.outcome is Outcome.UNRECOGNIZED:
            # The page objects need updating: keep what the screen was, on every attempt.
            walk.html_path = await self.evidence.save_html(page, plan.folder)
        if not walk.needs_login:
            walk.captures = list(flag_decisive(walk.captures))
        return walk

    async def _read(self, obj: BasePage | None, page: Page, plan: WalkPlan, walk: Walk, watch: WalkWatch) -> bool:
        """What the screen says, into `walk`, only looking: True when it decides the walk; False for the
        account picker, which is to be acted on."""
        where = origin_of(page.url)
        if where not in self.target.login_origins():
            # Only HubSpot decides: a screen any other origin serves is never a decision, whatever it says.
            walk.outcome = Outcome.ERROR
            walk.message = walk.error = (f"a screen served by {self.redact(where)}, not a configured HubSpot "
                                         f"origin: {self.redact(page.url.split('?')[0])}")  # fmt: skip
            return True
        full = not plan.outcome_only
        walk.heading = self.redact(await obj.heading_text()) if obj is not None and full else ""
        if obj is None:
            outage = watch.outage()
            if outage is not None:
                walk.outcome, walk.error = Outcome.ERROR, outage
            else:
                walk.outcome = Outcome.UNRECOGNIZED
                walk.heading = self.redact((await page.title()).strip())
            walk.message = walk.error or f"unknown screen at {self.redact(page.url.split('?')[0])}"
        elif obj.SCREEN in LOGIN_SCREENS:
            walk.needs_login = True
        elif isinstance(obj, AccountPickerPage):
            return False
        elif isinstance(obj, ConsentPage):
            if full or plan.optional:  # with no optional scope, the list can't make the outcome partial
                walk.offered = await obj.scopes_shown(("oauth", *plan.scopes), plan.optional)
            walk.outcome = consent_outcome(walk.offered, plan.optional)
        elif isinstance(obj, ConnectionErrorPage):
            walk.message = self.redact(await obj.message()) if full else ""
            walk.outcome = classify_error(await obj.cause())
        elif isinstance(obj, PermissionDeniedPage):
            if full:
                walk.message = self.redact(await obj.message() or await obj.heading_text())
                walk.missing_permissions = tuple(self.redact(p) for p in await obj.missing_permissions())
            walk.outcome = Outcome.DENIED_PERMISSIONS
        elif isinstance(obj, ApprovalNeededPage):
            walk.message = self.redact(await obj.message()) if full else ""
            walk.outcome = Outcome.NEEDS_APPROVAL
        else:
            walk.outcome, walk.message = Outcome.UNRECOGNIZED, f"unexpected screen: {obj.SCREEN.value}"
        return True

    async def _finish_install(
        self, walk: Walk, plan: WalkPlan, captured: asyncio.Future[str], expected_state: str
    ) -> None:
        """After "Connect app": check state, exchange the code, read granted scopes, revoke.

        Any trouble with the token API is infrastructure (ERROR, retried), never a HubSpot decision.
        """
        url = await asyncio.wait_for(captured, timeout=self.options.timeout_ms / 1000)
        query = parse_qs(urlsplit(url).query)
        self.redact.add(query.get("code", []))
        if query.get("state", [""])[0] != expected_state:
            walk.outcome, walk.error = Outcome.ERROR, "callback rejected: state does not match the one sent"
            walk.message = walk.error
            return
        if not plan.exchange:
            return  # approved: HubSpot redirected with our state
        app = self.target.apps[plan.app or self.target.main_app]
        try:
            granted = await self.tokens.granted_scopes(
                app, plan.redirect_uri or app.redirect_uri, query.get("code", [""])[0]
            )
        except (TokenTrouble, httpx.HTTPError) as exc:
            walk.outcome, walk.error = Outcome.ERROR, self.redact(str(exc) or type(exc).__name__)
            walk.message = walk.error
            return
        walk.granted = granted
        walk.outcome = consent_outcome(walk.granted, plan.optional)
