"""Drive one cell through HubSpot's hosted flow and classify what the browser shows.

Classification uses only the screens (page objects) and HubSpot's public token API. Logins happen once
per user per process, in a context of their own that is never traced, and are reused through
storage state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
from playwright.async_api import Browser, BrowserContext, Page, Request, Response, Route
from playwright.async_api import Error as PlaywrightError

from scopematrix.matrix import Cell, Matrix
from scopematrix.model import Capture, CellResult, Outcome, Screen
from scopematrix.pages.account_picker import AccountPickerPage
from scopematrix.pages.base import BasePage
from scopematrix.pages.consent import ConsentPage
from scopematrix.pages.errors import (
    ApprovalNeededPage,
    ConnectionErrorPage,
    ErrorCause,
    PermissionDeniedPage,
)
from scopematrix.pages.login import LoginEmailPage, LoginPasswordPage, RememberMePage, TwoFactorPage
from scopematrix.pages.screens import LOGIN_TYPES, identify, screen_of, settle
from scopematrix.redact import Redactor, redact_zip
from scopematrix.target import Target, origin_of

ISOLATION_HEADER = "X-Scopematrix-Isolation"
REDIRECT_PAGE = "<html><head><title>Redirect captured</title></head><body><h1>Redirect captured</h1></body></html>"
LOGIN_SCREENS = (Screen.LOGIN_EMAIL, Screen.LOGIN_PASSWORD, Screen.LOGIN_2FA, Screen.LOGIN_REMEMBER)
StorageState = dict[str, Any]


@dataclass(frozen=True)
class FlowOptions:
    approve: bool = False
    grace_s: float = 3.0
    timeout_ms: float = 15_000
    retries: int = 1
    tracing: str = "off"  # on | off | retain-on-failure
    video: str = "off"  # on | off | retain-on-failure
    pinned: bool = True
    max_steps: int = 12
    # A private folder where the processes of one run share their users' logins (None: this process only).
    shared_logins: Path | None = None


@dataclass
class Walk:
    """What one pass through the hosted screens showed."""

    outcome: Outcome
    heading: str = ""
    message: str = ""
    missing_permissions: tuple[str, ...] = ()
    offered: tuple[str, ...] | None = None  # None: the consent page's scope list could not be read
    granted: tuple[str, ...] | None = None
    captures: list[Capture] = field(default_factory=list)
    error: str = ""
    html_path: str = ""
    needs_login: bool = False
    navigations: int = 0  # main-frame document requests, redirects included


@dataclass(frozen=True)
class WalkPlan:
    """One pass through the hosted flow: who, where, which scopes, and what to do at consent."""

    user_id: str
    hub_id: int
    scopes: tuple[str, ...]
    optional: tuple[str, ...] = ()
    namespace: str | None = None
    approve: bool = False
    folder: Path | None = None  # where screenshots go; None for probes, which keep no evidence
    tracing: bool = False
    video: bool = False
    app: str = ""  # the matrix's app id; "" is the main app
    client_id: str | None = None  # deliberate misconfigurations of a scope set
    redirect_uri: str | None = None
    account_name: str = ""  # picks the account in the picker when a row shows no Hub ID
    # After "Connect app": exchange the code and read the granted scopes. A precondition install needs
    # only HubSpot's approval (the redirect with the state it sent), not tokens.
    exchange: bool = True

    @classmethod
    def for_cell(cls, cell: Cell, user_id: str | None = None, **options: Any) -> WalkPlan:
        s = cell.scope_set
        options.setdefault("app", s.app or "")
        return cls(user_id or cell.user.id, cell.account.hub_id, tuple(s.scopes), tuple(s.optional),
                   client_id=s.client_id, redirect_uri=s.redirect_uri, account_name=cell.account.name,
                   **options)  # fmt: skip


@dataclass(frozen=True)
class LoginFailure:
    message: str
    captures: tuple[Capture, ...]
    outcome: Outcome = Outcome.LOGIN_FAILED

    def as_walk(self) -> Walk:
        error = self.message if self.outcome is Outcome.ERROR else ""
        return Walk(self.outcome, heading="Login", message=self.message, captures=list(self.captures), error=error)


def classify_error(cause: ErrorCause) -> Outcome:
    if cause is ErrorCause.ACCOUNT_LACKS_FEATURES:
        return Outcome.DENIED_ACCOUNT
    if cause is ErrorCause.NOT_APPROVED:
        return Outcome.NEEDS_APPROVAL
    if cause is ErrorCause.UNKNOWN:
        return Outcome.UNRECOGNIZED
    return Outcome.APP_MISCONFIGURED


def consent_outcome(offered: tuple[str, ...] | None, optional: tuple[str, ...]) -> Outcome:
    """Partial only on evidence: a scope list that was read (or the token's scopes) lacks an optional scope."""
    if offered is None:
        return Outcome.GRANTED
    return Outcome.GRANTED_PARTIAL if any(s not in offered for s in optional) else Outcome.GRANTED


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "--", text)


def authorize_url(target: Target, plan: WalkPlan, pinned: bool, state: str) -> str:
    app = target.apps[plan.app or target.main_app]
    path = f"/oauth/{plan.hub_id}/authorize" if pinned else "/oauth/authorize"
    scopes, optional = plan.scopes, plan.optional
    params = {
        "client_id": plan.client_id or app.client_id,
        "redirect_uri": plan.redirect_uri or app.redirect_uri,
        "scope": " ".join(scopes),
    }
    if optional:
        params["optional_scope"] = " ".join(optional)
    params["state"] = state
    return target.app_url + path + "?" + urlencode(params).replace("+", "%20")


class SharedLogins:
    """A user's signed-in state shared by the processes of one run (xdist workers, a resumed run): a file
    only this OS user can read, in a private folder outside the reports, and a lock so that one process
    logs in while the others wait for it. A state that HubSpot no longer accepts is replaced (force)."""

    def __init__(self, folder: Path, user_id: str) -> None:
        self.path = folder / f"{slug(user_id)}.json"
        self._lock_path = folder / f"{slug(user_id)}.lock"
        self._fd: int | None = None

    @classmethod
    def open(cls, folder: Path | None, user_id: str) -> SharedLogins | None:
        """None (this process logs in on its own) unless the folder is ours alone: a folder in the shared temp
        directory that another OS user made (or a symlink) is never trusted with a session; ours is made 0700."""
        if folder is None:
            return None
        try:
            for level in (folder.parents[1], folder.parent, folder):
                level.mkdir(mode=0o700, exist_ok=True)
                if level.is_symlink() or level.lstat().st_uid != os.getuid():
                    return None
                level.chmod(0o700)
        except OSError:
            return None
        return cls(folder, user_id)

    async def __aenter__(self) -> SharedLogins:
        self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def read(self) -> StorageState | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, state: StorageState) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        tmp.replace(self.path)


def attempt_folder(run_dir: Path, cell_id: str, attempt: int) -> Path:
    """Where a cell's attempt keeps its evidence: screenshots, trace.zip, video.webm."""
    return run_dir / "cells" / slug(cell_id) / f"attempt-{attempt}"


def shared_logins_dir(run_id: str) -> Path:
    """Where the processes of run `run_id` share logins: the OS user's private temp folder, never the reports."""
    return Path(tempfile.gettempdir()) / f"scopematrix-{os.getuid()}" / "logins" / run_id


@dataclass
class WalkWatch:
    """What the page's network events showed during one walk: main-frame navigations and document statuses."""

    navigations: int = 0
    statuses: list[int] = field(default_factory=list)


class Navigations:
    """A request listener that counts the page's main-frame document navigations (redirects included)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: Request) -> None:
        if main_frame_navigation(request):
            self.count += 1


def main_frame_navigation(request: Request) -> bool:
    """A document navigation of the page itself. Asked in this order: a service worker's request has no
    frame, and asking for it raises."""
    return request.is_navigation_request() and request.frame.parent_frame is None


class LoginLimiter:
    """At most `per_minute` logins start per minute (politeness towards live HubSpot)."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self.interval


class Harness:
    """Runs cells and probes in one browser; many contexts may be in flight at once."""

    def __init__(
        self,
        browser_factory: Callable[[], Awaitable[Browser]],
        target: Target,
        matrix: Matrix,
        run_dir: Path,
        options: FlowOptions,
        run_id: str,
        logins_per_minute: float | None = None,
    ) -> None:
        self._browser_factory = browser_factory
        self._browser: Browser | None = None
        self._browser_lock = asyncio.Lock()
        self.target = target
        self.matrix = matrix
        self.run_dir = run_dir
        self.options = options
        self.run_id = run_id
        self.redact = Redactor(target.secrets())
        self._states: dict[str, StorageState | LoginFailure] = {}
        self._idle: dict[str, list[tuple[BrowserContext, Page]]] = {}
        self._redirects: dict[Page, asyncio.Future[str]] = {}
        self._watches: dict[Page, WalkWatch] = {}
        self._login_locks: dict[str, asyncio.Lock] = {}
        self._login_navs: list[int] = []  # each login's navigations, until a record reports it (take_logins)
        # Preconditions: one install per account and scope set, in a namespace of this harness's own.
        self._installs: dict[tuple[str, str], tuple[str, asyncio.Task[Walk]]] = {}  # key: namespace, install
        self._install_namespaces: list[str] = []
        self._tag = secrets.token_hex(4)  # under xdist each worker's harness installs for its own cells
        self._limiter = LoginLimiter(logins_per_minute)
        # Bounds logins in flight; the engine sets it to its concurrency.
        self.slots = asyncio.Semaphore(4)
        self.logins = 0
        self._http = httpx.AsyncClient(timeout=options.timeout_ms / 1000)
        # Every app's redirect_uri: the browser's redirect there carries the code and ends the flow.
        self._redirect_re = re.compile(
            "^(?:" + "|".join(re.escape(a.redirect_uri) for a in target.apps.values() if a.redirect_uri) + ")"
        )

    async def close(self) -> None:
        self._idle.clear()  # their contexts close with the browser, all at once
        for ns in self._install_namespaces:
            await self.reset(ns)
        await self._http.aclose()
        if self._browser is not None and self._browser.is_connected():
            await self._browser.close()

    async def browser(self) -> Browser:
        async with self._browser_lock:
            if self._browser is None or not self._browser.is_connected():
                self._idle.clear()  # contexts of a dead browser are gone with it
                self._browser = await self._browser_factory()
            return self._browser

    # -- contexts and evidence -------------------------------------------------------------------------------

    async def _context(self, state: StorageState | None, video_dir: Path | None = None) -> BrowserContext:
        browser = await self.browser()
        context = await browser.new_context(
            storage_state=state,  # type: ignore[arg-type]
            viewport={"width": 1000, "height": 760},
            record_video_dir=video_dir,
        )
        context.set_default_timeout(self.options.timeout_ms)
        context.set_default_navigation_timeout(self.options.timeout_ms)
        return context

    async def _capture(self, obj: BasePage | None, page: Page, folder: Path | None, captures: list[Capture]) -> None:
        if folder is None:
            return
        screen = screen_of(obj)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(captures) + 1:02d}-{screen.value}.png"
        mask = (obj or BasePage(page)).secret_fields()
        try:
            await page.screenshot(path=str(path), mask=mask, animations="disabled")
        except PlaywrightError:
            return
        captures.append(Capture(screen, str(path.relative_to(self.run_dir))))

    async def _save_html(self, page: Page, folder: Path | None) -> str:
        if folder is None:
            return ""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "unrecognized.html"
        try:
            path.write_text(self.redact(await page.content()), encoding="utf-8")
        except PlaywrightError:
            return ""
        return str(path.relative_to(self.run_dir))

    # -- login -----------------------------------------------------------------------------------------------

    async def login(self, user_id: str, force: bool = False) -> StorageState | LoginFailure:
        lock = self._login_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            if user_id in self._states and not force:
                return self._states[user_id]
            creds = self.target.credentials[user_id]
            if creds.storage_state and not force:
                state: StorageState = json.loads(Path(creds.storage_state).read_text())
                self._states[user_id] = state
                return state
            shared = SharedLogins.open(self.options.shared_logins, user_id)
            if shared is None:
                return await self._fresh_login(user_id, None)
            async with shared:  # one process logs the user in; the others of the run wait and reuse it
                # Another process's login, unless it is the very state that just failed here.
                state_or_none = shared.read()
                if state_or_none is not None and (not force or state_or_none != self._states.get(user_id)):
                    self._states[user_id] = state_or_none
                    return state_or_none
                return await self._fresh_login(user_id, shared)

    async def _fresh_login(self, user_id: str, shared: SharedLogins | None) -> StorageState | LoginFailure:
        await self._drop_idle(user_id)  # their cookies belong to the session being replaced
        await self._limiter.wait()
        self.logins += 1
        async with self.slots:  # a login is a browser context in flight too
            outcome = await self._login_once(user_id)
        if not (isinstance(outcome, LoginFailure) and outcome.outcome is Outcome.ERROR):
            self._states[user_id] = outcome  # infrastructure failures are retried, not remembered
            if shared is not None and not isinstance(outcome, LoginFailure):
                shared.write(outcome)
        return outcome

    async def _login_once(self, user_id: str) -> StorageState | LoginFailure:
        creds = self.target.credentials[user_id]
        folder = self.run_dir / "logins" / slug(user_id)
        captures: list[Capture] = []
        context = await self._context(None)
        navigations = Navigations()
        try:
            page = await context.new_page()
            page.on("request", navigations)
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
                        message = f"login page on {self.redact(where)}, not a configured HubSpot origin: nothing typed"
                        return LoginFailure(message, tuple(captures), Outcome.ERROR)
                    error = await obj.error_text()
                    if error:
                        await self._capture(obj, page, folder, captures)
                        return LoginFailure(self.redact(error), flag_decisive(captures))
                if isinstance(obj, LoginEmailPage):
                    await obj.submit_email(creds.email)
                elif isinstance(obj, LoginPasswordPage):
                    await obj.submit_password(creds.password, creds.email)
                elif isinstance(obj, TwoFactorPage):
                    if not creds.totp_secret:
                        await self._capture(obj, page, folder, captures)
                        message = "2FA code requested but no TOTP secret is configured"
                        return LoginFailure(message, flag_decisive(captures))
                    await obj.submit_code(pyotp.TOTP(creds.totp_secret).now())
                elif isinstance(obj, RememberMePage):
                    await obj.skip_for_now()
                else:
                    return await context.storage_state()  # type: ignore[return-value]
            return LoginFailure("login did not finish", tuple(captures))
        except PlaywrightError as exc:
            return LoginFailure(
                self.redact(f"login failed: {exc.message.splitlines()[0]}"), tuple(captures), Outcome.ERROR
            )
        finally:
            self._login_navs.append(navigations.count)
            await context.close()

    def take_logins(self) -> dict[str, float]:
        """The logins this process made since the last call, and their navigations, for the next record: so
        every login is counted on some cell (whichever cell, precondition or diagnosis needed it)."""
        done, self._login_navs = self._login_navs, []
        return {"logins": float(len(done)), "login_navigations": float(sum(done))} if done else {}

    # -- the walk --------------------------------------------------------------------------------------------

    async def walk(self, plan: WalkPlan) -> Walk:
        walk: Walk | None = None
        for force in (False, True):  # the second pass: the saved session expired, log in again once
            state = await self.login(plan.user_id, force=force)
            if isinstance(state, LoginFailure):
                return state.as_walk()
            walk = await self._walk_once(plan, state)
            if not walk.needs_login:
                return walk
        assert walk is not None
        walk.outcome, walk.message = Outcome.LOGIN_FAILED, "HubSpot asked for a login again right after login"
        return walk

    async def _lease(
        self, user_id: str, state: StorageState, fresh: bool, video_dir: Path | None = None
    ) -> tuple[BrowserContext, Page]:
        """A signed-in page for the user: an idle one from an earlier walk, or a new context.

        Reuse saves about 0.18 s a flow; every walk of a user shares its login anyway.
        """
        idle = self._idle.get(user_id)
        if idle and not fresh:
            return idle.pop()
        context = await self._context(state, video_dir)
        # A regex is matched by the driver; a Python predicate would intercept every request.
        await context.route(self._redirect_re, self._on_redirect)
        page = await context.new_page()
        # Listeners once per page, not per walk: each subscription change is a round trip to the driver.
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        return context, page

    async def _give_back(self, user_id: str, context: BrowserContext, page: Page, reusable: bool) -> None:
        if reusable and not page.is_closed():
            self._idle.setdefault(user_id, []).append((context, page))
            return
        try:
            await context.close()
        except PlaywrightError:
            pass

    async def _drop_idle(self, user_id: str | None = None) -> None:
        for uid in [user_id] if user_id is not None else list(self._idle):
            for context, _ in self._idle.pop(uid, []):
                try:
                    await context.close()
                except PlaywrightError:
                    pass

    async def _on_redirect(self, route: Route) -> None:
        """The app's redirect_uri, answered inside the browser: no callback server, and the code never
        leaves this process."""
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
        if response.request.resource_type != "document" or response.frame.parent_frame is not None:
            return  # (resource type first: a service worker's response has no frame)
        watch = self._watches.get(response.frame.page)
        if watch is not None:
            watch.statuses.append(response.status)

    def _redirected(self, page: Page, url: str) -> None:
        future = self._redirects.get(page)
        if future is not None and not future.done():
            future.set_result(url)

    async def _walk_once(self, plan: WalkPlan, state: StorageState) -> Walk:
        expected_state = secrets.token_urlsafe(16)
        url = authorize_url(self.target, plan, self.options.pinned, expected_state)
        captured: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        watch = WalkWatch()
        walk = Walk(Outcome.ERROR)
        video_dir = plan.folder / ".video" if plan.video and plan.folder is not None else None
        fresh = plan.tracing or video_dir is not None
        context, page = await self._lease(plan.user_id, state, fresh, video_dir)
        self._redirects[page] = captured
        self._watches[page] = watch
        if plan.tracing:
            await context.tracing.start(screenshots=True, snapshots=True)
        try:
            headers = {ISOLATION_HEADER: plan.namespace} if plan.namespace and self.target.isolation else {}
            await page.set_extra_http_headers(headers)
            await page.goto(url, wait_until="domcontentloaded")
            walk = await self._steps(page, plan, captured, expected_state, watch.statuses)
        except (PlaywrightError, httpx.HTTPError, TimeoutError, OSError) as exc:
            first = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).splitlines()[0]
            walk.outcome, walk.error = Outcome.ERROR, self.redact(first)
            walk.message = walk.message or walk.error
        finally:
            self._redirects.pop(page, None)
            self._watches.pop(page, None)
            walk.navigations = watch.navigations
            if plan.tracing and plan.folder is not None:
                await self._stop_tracing(
                    context, plan.folder, keep=self.options.tracing == "on" or walk.outcome.infrastructure
                )
            # After trouble the page may be in any state: don't hand it to the next walk.
            reusable = not fresh and not walk.outcome.infrastructure and not walk.needs_login
            await self._give_back(plan.user_id, context, page, reusable)
            if video_dir is not None:
                await self._keep_video(page, video_dir, keep=self.options.video == "on" or walk.outcome.infrastructure)
        return walk

    @staticmethod
    async def _keep_video(page: Page, video_dir: Path, keep: bool) -> None:
        """The walk's video as video.webm beside its screenshots (a walk after login: no credential in it)."""
        video = page.video
        try:
            if video is not None and keep:
                await video.save_as(video_dir.parent / "video.webm")
            if video is not None:
                await video.delete()
        except PlaywrightError:
            pass
        shutil.rmtree(video_dir, ignore_errors=True)

    async def _stop_tracing(self, context: BrowserContext, folder: Path, keep: bool) -> None:
        try:
            if keep:
                folder.mkdir(parents=True, exist_ok=True)
                await context.tracing.stop(path=str(folder / "trace.zip"))
                redact_zip(folder / "trace.zip", self.redact)  # the redirect URL in it carries the code
            else:
                await context.tracing.stop()
        except PlaywrightError:
            pass

    async def _steps(
        self,
        page: Page,
        plan: WalkPlan,
        captured: asyncio.Future[str],
        expected_state: str,
        statuses: list[int],
    ) -> Walk:
        walk = Walk(Outcome.UNRECOGNIZED)
        for _ in range(self.options.max_steps):
            obj = await identify(page, self.options.grace_s, self.options.timeout_ms)
            if obj is None and not self.options.pinned:
                picker = AccountPickerPage(page)
                if await picker.lists(plan.hub_id, plan.account_name):
                    obj = picker  # a picker whose heading we don't know, but that lists the account
            # The screenshot is taken while the screen is read (both only look); acting on the screen waits for it.
            shot = asyncio.ensure_future(self._capture(obj, page, plan.folder, walk.captures))
            try:
                decided = await self._read(obj, page, plan, walk, statuses)
            finally:
                await shot
            if not decided:  # the account picker: choose the account, then the next screen
                assert isinstance(obj, AccountPickerPage)
                if not await obj.choose(plan.hub_id, plan.account_name):
                    walk.outcome, walk.message = Outcome.UNRECOGNIZED, f"the account picker does not list {plan.hub_id}"
                    break
                continue
            if isinstance(obj, ConsentPage) and plan.approve:
                await obj.approve()
                await self._finish_install(walk, plan, captured, expected_state)
            break
        else:
            walk.outcome, walk.message = Outcome.UNRECOGNIZED, "too many screens without a decision"
        if walk.outcome is Outcome.UNRECOGNIZED:
            # The page objects need updating: keep what the screen was, on every attempt.
            walk.html_path = await self._save_html(page, plan.folder)
        if not walk.needs_login:
            walk.captures = list(flag_decisive(walk.captures))
        return walk

    async def _read(self, obj: BasePage | None, page: Page, plan: WalkPlan, walk: Walk, statuses: list[int]) -> bool:
        """What the screen says, into `walk`, only looking: True when it decides the walk; False for the
        account picker, which is to be acted on."""
        walk.heading = self.redact(await obj.heading_text()) if obj is not None else ""
        if obj is None:
            if statuses and statuses[-1] >= 500:
                walk.outcome, walk.error = Outcome.ERROR, f"HTTP {statuses[-1]} from the target"
            else:
                walk.outcome = Outcome.UNRECOGNIZED
                walk.heading = self.redact((await page.title()).strip())
            walk.message = walk.error or f"unknown screen at {self.redact(page.url.split('?')[0])}"
        elif obj.SCREEN in LOGIN_SCREENS:
            walk.needs_login = True
        elif isinstance(obj, AccountPickerPage):
            return False
        elif isinstance(obj, ConsentPage):
            walk.offered = await obj.scopes_shown(("oauth", *plan.scopes), plan.optional)
            walk.outcome = consent_outcome(walk.offered, plan.optional)
        elif isinstance(obj, ConnectionErrorPage):
            walk.message = self.redact(await obj.message())
            walk.outcome = classify_error(await obj.cause())
        elif isinstance(obj, PermissionDeniedPage):
            walk.message = self.redact(await obj.message() or await obj.heading_text())
            walk.missing_permissions = tuple(self.redact(p) for p in await obj.missing_permissions())
            walk.outcome = Outcome.DENIED_PERMISSIONS
        elif isinstance(obj, ApprovalNeededPage):
            walk.message = self.redact(await obj.message())
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
        if query.get("state", [""])[0] != expected_state:
            walk.outcome, walk.error = Outcome.ERROR, "callback rejected: state does not match the one sent"
            walk.message = walk.error
            return
        if not plan.exchange:
            return  # approved: HubSpot redirected with our state
        app = self.target.apps[plan.app or self.target.main_app]
        api = self.target.api_url
        form = {
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": plan.redirect_uri or app.redirect_uri,
            "code": query.get("code", [""])[0],
        }
        try:
            response = await self._http.post(f"{api}/oauth/v1/token", data=form)
            if response.status_code != 200:
                raise _TokenTrouble(f"token exchange failed: HTTP {response.status_code} {response.text[:200]}")
            tokens = _json_object(response, "token exchange")
            access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
            if not isinstance(access, str) or not isinstance(refresh, str):
                raise _TokenTrouble("token exchange answered without access_token and refresh_token")
            info = await self._http.get(f"{api}/oauth/v1/access-tokens/{access}")
            source = _json_object(info, "token info") if info.status_code == 200 else tokens
            scopes = source.get("scopes")
            if not isinstance(scopes, list):
                raise _TokenTrouble(f"token info failed: HTTP {info.status_code}, and the token carries no scopes")
            revoke = await self._http.delete(f"{api}/oauth/v1/refresh-tokens/{refresh}")
            if revoke.status_code >= 300:
                raise _TokenTrouble(f"revoking the refresh token failed: HTTP {revoke.status_code}")
        except (_TokenTrouble, httpx.HTTPError) as exc:
            walk.outcome, walk.error = Outcome.ERROR, self.redact(str(exc) or type(exc).__name__)
            walk.message = walk.error
            return
        walk.granted = tuple(str(s) for s in scopes)
        walk.outcome = consent_outcome(walk.granted, plan.optional)

    # -- cells -----------------------------------------------------------------------------------------------

    def namespace(self, *parts: str) -> str:
        return "/".join((self.run_id, *parts))

    async def reset(self, namespace: str) -> None:
        if self.target.isolation:
            try:
                await self._http.post(f"{self.target.app_url}/__sim/reset", params={"namespace": namespace})
            except httpx.HTTPError:
                pass

    async def run_cell(self, cell: Cell, expected: Outcome | None = None, reason: str = "") -> CellResult:
        started = time.monotonic()
        attempts = 0
        walk = Walk(Outcome.ERROR)
        note = ""
        timings: dict[str, float] = {}
        while attempts <= self.options.retries:
            attempts += 1
            ns = self.namespace(cell.id, f"a{attempts}")
            folder = attempt_folder(self.run_dir, cell.id, attempts)
            note = ""
            t0 = time.monotonic()
            plan = WalkPlan.for_cell(
                cell, namespace=ns, approve=self.options.approve, folder=folder,
                tracing=self.options.tracing != "off", video=self.options.video != "off",
            )  # fmt: skip
            own_login = self._states.get(cell.user.id)
            if cell.scope_set.installed_by and not isinstance(own_login, LoginFailure):
                installer = cell.scope_set.installed_by
                if plan.approve:  # the cell installs too, which changes what the next cell sees: an install of its own
                    pre = await self.walk(
                        WalkPlan.for_cell(cell, installer, namespace=ns, approve=True, exchange=False)
                    )
                else:  # only a look at consent follows: the install shared by the scope set's cells, in its namespace
                    ns, pre = await self._shared_install(cell)
                    plan = dataclasses.replace(plan, namespace=ns)
                timings["precondition_s"] = round(time.monotonic() - t0, 3)
                if pre.outcome.infrastructure:
                    # An outage during the precondition says nothing about this cell: infrastructure, retried.
                    walk = Walk(Outcome.ERROR, heading=pre.heading, captures=pre.captures, html_path=pre.html_path)
                    walk.error = walk.message = f"precondition: {installer}'s install failed: {pre.message}"
                    if plan.approve:
                        await self.reset(ns)
                    continue
                if not pre.outcome.installs:
                    note = f"precondition: {installer} could not install ({pre.outcome.value}). "
            t1 = time.monotonic()
            walk = await self.walk(plan)
            timings["flow_s"] = round(time.monotonic() - t1, 3)
            timings["navigations"] = float(walk.navigations)
            if plan.approve:
                await self.reset(ns)  # installs left state in this cell's namespace; a look at consent leaves none
            if not walk.outcome.infrastructure:
                break
        url = authorize_url(self.target, WalkPlan.for_cell(cell), self.options.pinned, "REDACTED")
        trace = attempt_folder(self.run_dir, cell.id, attempts) / "trace.zip"
        return CellResult(
            cell_id=cell.id,
            user=cell.user.id,
            role=cell.user.role,
            account=cell.account.id,
            hub_id=cell.account.hub_id,
            scope_set=cell.scope_set.id,
            requested_scopes=tuple(cell.scope_set.scopes),
            optional_scopes=tuple(cell.scope_set.optional),
            outcome=walk.outcome,
            heading=walk.heading,
            message=note + walk.message,
            missing_permissions=walk.missing_permissions,
            offered_scopes=walk.offered,
            granted_scopes=walk.granted,
            screenshots=tuple(walk.captures),
            expected=expected,
            expectation_reason=reason,
            attempts=attempts,
            duration_s=round(time.monotonic() - started, 3),
            authorize_url=url,
            error=walk.error,
            html_path=walk.html_path,
            trace_path=str(trace.relative_to(self.run_dir)) if trace.exists() else "",
            timings=timings,
            installed_by=cell.scope_set.installed_by,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    async def _shared_install(self, cell: Cell) -> tuple[str, Walk]:
        """The scope set's install by its installer, once per account and scope set: the namespace it is in,
        and its walk. The cells that follow it only look at consent, which changes nothing, so they share it
        (as on HubSpot, where the app stays installed). One that failed for infrastructure is made afresh
        by the next attempt."""
        key = (cell.account.id, cell.scope_set.id)
        if key not in self._installs:
            ns = self.namespace("install", self._tag, *key, str(len(self._install_namespaces)))
            self._install_namespaces.append(ns)
            plan = WalkPlan.for_cell(cell, cell.scope_set.installed_by, namespace=ns, approve=True, exchange=False)
            self._installs[key] = (ns, asyncio.ensure_future(self.walk(plan)))
        entry = ns, task = self._installs[key]
        try:
            pre = await asyncio.shield(task)  # (a cell cancelled while waiting leaves the install to the others)
        except Exception:
            self._forget_install(key, entry)
            raise
        if pre.outcome.infrastructure:
            self._forget_install(key, entry)
        return ns, pre

    def _forget_install(self, key: tuple[str, str], entry: tuple[str, asyncio.Task[Walk]]) -> None:
        """A failed install: the next attempt makes it afresh (unless another cell already has)."""
        if self._installs.get(key) is entry:
            del self._installs[key]

    def failed(self, cell: Cell, expected: Outcome | None, exc: BaseException) -> CellResult:
        """A cell whose run raised: infrastructure trouble with the reason, never a lost cell."""
        reason = self.redact(f"harness error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return CellResult(
            cell_id=cell.id, user=cell.user.id, role=cell.user.role, account=cell.account.id,
            hub_id=cell.account.hub_id, scope_set=cell.scope_set.id, requested_scopes=tuple(cell.scope_set.scopes),
            optional_scopes=tuple(cell.scope_set.optional), outcome=Outcome.ERROR, message=reason, error=reason,
            expected=expected, installed_by=cell.scope_set.installed_by,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip


class _TokenTrouble(Exception):
    """The token API answered, but not as documented (brief section 4)."""


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise _TokenTrouble(f"{what} answered HTTP {response.status_code} with something that isn't JSON") from None
    if not isinstance(data, dict):
        raise _TokenTrouble(f"{what} answered JSON that isn't an object")
    return data


def flag_decisive(captures: list[Capture]) -> tuple[Capture, ...]:
    """The last screen passed is where the outcome was decided."""
    if not captures:
        return ()
    return (*captures[:-1], dataclasses.replace(captures[-1], decisive=True))
