"""The simulator as a Starlette app factory. All state lives in the returned app's SimState."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import pyotp
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scopematrix.rules.catalog import CATALOG
from scopematrix.rules.decide import Decision, Verdict, check_install, check_request
from scopematrix.rules.model import AuthorizeRequest, User
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.state import (
    FAULT_KINDS,
    CodeRecord,
    Fault,
    PendingGrant,
    PendingLogin,
    SimOptions,
    SimState,
    TokenRecord,
)

log = logging.getLogger("scopematrix.simulator")
HEADING = "Couldn’t complete the connection"
ISOLATION_HEADER = "x-scopematrix-isolation"
SESSION_COOKIE = "hs_session"
LOGIN_COOKIE = "hs_login"
DEVICE_COOKIE = "hs_2fa_device"
BANNER_COOKIE = "__hs_cookie_cat_pref"

MESSAGES: dict[Verdict, str] = {
    Verdict.BAD_CLIENT_ID: "An invalid app client_id was provided. Please contact the app developer.",
    Verdict.INVALID_SCOPE: "An invalid scope name was provided. Please contact the app developer.",
    Verdict.INSUFFICIENT_SCOPES: (
        "Authorization failed because the provided scopes are insufficient. Please contact the app developer."
    ),
    Verdict.SCOPE_MISMATCH: (
        "Authorization failed because there is a mismatch between the scopes in the install URL and the "
        "app's configured scopes. Please contact the app developer."
    ),
    Verdict.ACCOUNT_LACKS_FEATURES: (
        "This account doesn't have access to some HubSpot features that are required by this app. "
        "Please contact the app developer."
    ),
    Verdict.AUP_NOT_SIGNED: (
        "The app could not be installed because the app developer has not signed the acceptable use policy."
    ),
}


def _split_scopes(raw: str | None) -> tuple[str, ...]:
    # Space- or plus-separated; Starlette already turned '+' into ' ' when decoding the query.
    return tuple(dict.fromkeys(s for s in (raw or "").replace("+", " ").split() if s))


def _safe_next(value: str | None) -> str:
    """Only same-site relative paths: login must never become an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class SimulatorApp:
    """The ASGI app: Starlette routes behind per-response latency and injected faults (test support)."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator
        self.options = simulator.options
        self.responses = 0  # HTTP requests served outside /__sim (the benchmark's lower bound counts them)

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.options.faults:
            if path.startswith(fault.path) and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sim"):
            await self.app(scope, receive, send)
            return
        self.responses += 1
        fault = self._take_fault(scope["path"])
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(3600)
            return
        if fault is not None and fault.kind == "5xx":
            body = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": body})
            return
        if fault is not None and fault.kind == "maintenance":
            # A screen no page object knows, as when HubSpot ships a new one.
            body = b"<html><head><title>Scheduled maintenance</title></head><body><h2>Back soon</h2></body></html>"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": body})
            return
        if fault is not None and fault.kind == "tamper-state":
            await self.app(scope, receive, _tamper_state(send))
            return
        if fault is not None and fault.kind == "drop":
            # Promise a body, send part of it, then give up: the client sees a broken connection.
            headers = [(b"content-type", b"text/html"), (b"content-length", b"4096")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"<html><body>", "more_body": True})
            # Raising after the response started makes the server close the connection mid-body.
            raise ConnectionAbortedError("fault injection: connection dropped")
        if self.options.latency_s > 0:
            await asyncio.sleep(self.options.latency_s)
        await self.app(scope, receive, send)


def _tamper_state(send: Send) -> Send:
    """Rewrite the `state` in a redirect's Location, as a man in the middle would."""

    async def tampered(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = []
            for name, value in message.get("headers", []):
                if name.lower() == b"location":
                    value = re.sub(rb"([?&]state=)[^&]*", rb"\1forged", value)
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return tampered


def _api_error(status_code: int, status: str, message: str, category: str, error: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "status": status,
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if error is not None:
        body["error"] = error
        body["error_description"] = message
    return JSONResponse(body, status_code=status_code)


class Simulator:
    """Request handlers over one scenario, one options object and one state."""

    def __init__(self, scenario: Scenario, options: SimOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.state = SimState()
        self.templates = Environment(
            loader=PackageLoader("scopematrix.simulator", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )

    # -- rendering -------------------------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("show_cookie_banner", BANNER_COOKIE not in request.cookies)
        ctx.setdefault("markup", self.scenario.markup)
        ctx.setdefault(
            "current_path",
            _safe_next(request.url.path + ("?" + request.url.query if request.url.query else "")),
        )
        html = self.templates.get_template(template).render(**ctx)
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, message: str, status: int = 200) -> HTMLResponse:
        return self.page(request, "error.html.j2", status, heading=HEADING, message=message)

    def namespace(self, request: Request) -> str:
        return request.headers.get(ISOLATION_HEADER, "") if self.options.test_support else ""

    def current_user(self, request: Request) -> User | None:
        user_id = self.state.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        return self.scenario.users.get(user_id) if user_id else None

    # -- login -----------------------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=302)
        return self.page(request, "home.html.j2", name=user.name)

    async def login(self, request: Request) -> Response:
        nxt = _safe_next(request.query_params.get("loginRedirectUrl"))
        if self.current_user(request) is not None:
            return RedirectResponse(nxt, status_code=302)
        return self.page(request, "login_email.html.j2", next=nxt, email="", error=None)

    async def login_email(self, request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", "")).strip()
        nxt = _safe_next(str(form.get("loginRedirectUrl", "")))
        if "@" not in email or len(email) > 254:
            error = "Please enter a valid email address."
            return self.page(request, "login_email.html.j2", next=nxt, email=email[:254], error=error)
        flow = secrets.token_urlsafe(16)
        self.state.logins[flow] = PendingLogin(email=email, next=nxt)
        response = RedirectResponse("/login/password", status_code=303)
        response.set_cookie(LOGIN_COOKIE, flow, httponly=True, samesite="lax")
        return response

    def _pending(self, request: Request, stage: str) -> PendingLogin | None:
        pending = self.state.logins.get(request.cookies.get(LOGIN_COOKIE, ""))
        return pending if pending is not None and pending.stage == stage else None

    async def login_password(self, request: Request) -> Response:
        pending = self._pending(request, "password")
        if pending is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return self.page(request, "login_password.html.j2", email=pending.email, error=None)
        form = await request.form()
        password = str(form.get("password", ""))
        user = self.scenario.user_by_email(pending.email)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            error = "That email and password combination isn't right. Try again."
            return self.page(request, "login_password.html.j2", email=pending.email, error=error)
        if user.deactivated:
            error = "This user has been deactivated. Contact a super admin in your HubSpot account."
            return self.page(request, "login_password.html.j2", email=pending.email, error=error)
        pending.user_id = user.id
        remembered = request.cookies.get(DEVICE_COOKIE, "") in self.state.remembered_devices
        if user.totp_secret and self.scenario.switches.totp_required and not remembered:
            pending.stage = "2fa"
            return RedirectResponse("/login/2fa", status_code=303)
        return self._finish_login(request, pending)

    async def login_2fa(self, request: Request) -> Response:
        pending = self._pending(request, "2fa")
        if pending is None or pending.user_id is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return self.page(request, "login_2fa.html.j2", error=None)
        form = await request.form()
        code = str(form.get("code", "")).strip()
        secret = self.scenario.users[pending.user_id].totp_secret or ""
        if not (code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)):
            return self.page(request, "login_2fa.html.j2", error="This doesn't look right. Try again.")
        pending.stage = "remember"
        return RedirectResponse("/login/remember", status_code=303)

    async def login_remember(self, request: Request) -> Response:
        pending = self._pending(request, "remember")
        if pending is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return self.page(request, "login_remember.html.j2")
        form = await request.form()
        response = self._finish_login(request, pending)
        if form.get("remember") == "yes":
            device = secrets.token_urlsafe(16)
            self.state.remembered_devices.add(device)
            response.set_cookie(DEVICE_COOKIE, device, httponly=True, samesite="lax")
        return response

    def _finish_login(self, request: Request, pending: PendingLogin) -> Response:
        assert pending.user_id is not None  # set by the password step
        session = secrets.token_urlsafe(24)
        self.state.sessions[session] = pending.user_id
        self.state.logins.pop(request.cookies.get(LOGIN_COOKIE, ""), None)
        response = RedirectResponse(pending.next, status_code=303)
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    async def cookie_consent(self, request: Request) -> Response:
        form = await request.form()
        response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(BANNER_COOKIE, "accept" if form.get("choice") == "accept" else "decline")
        return response

    # -- authorize -------------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        if len(request.url.query) > self.options.max_query_chars:
            return self.error_page(request, "This install link is too long. Please contact the app developer.", 414)
        raw_hub = request.path_params.get("hub_id")
        if raw_hub is not None and not raw_hub.isdigit():
            return self.not_found_page(request)
        user = self.current_user(request)
        if user is None:
            nxt = request.url.path + "?" + request.url.query
            return RedirectResponse("/login?" + urlencode({"loginRedirectUrl": nxt}), status_code=302)
        q = request.query_params
        areq = AuthorizeRequest(
            client_id=q.get("client_id", ""),
            redirect_uri=q.get("redirect_uri", ""),
            scopes=_split_scopes(q.get("scope")),
            optional_scopes=_split_scopes(q.get("optional_scope")),
        )
        early = check_request(self.scenario.apps, areq)
        if early is not None:
            return self.render_decision(request, early, areq)
        app = self.scenario.apps[areq.client_id]
        hub_id = int(raw_hub) if raw_hub is not None and len(raw_hub) < 12 else None
        member = user.membership(hub_id) if hub_id is not None else None
        if member is None:
            accounts = [self.scenario.accounts[m.hub_id] for m in user.memberships]
            rows = [
                {
                    "hub_id": a.hub_id,
                    "name": a.name,
                    "link": f"/oauth/{a.hub_id}/authorize?{request.url.query}",
                }
                for a in accounts
            ]
            return self.page(request, "account_picker.html.j2", app=app, accounts=rows)
        account = self.scenario.accounts[member.hub_id]
        ns = self.namespace(request)
        approved = self.state.approved(ns, app.client_id, account.hub_id)
        decision = check_install(app, areq, account, member, approved, self.scenario.switches)
        if decision.verdict is not Verdict.CONSENT:
            return self.render_decision(request, decision, areq)
        grant_id = secrets.token_urlsafe(16)
        self.state.grants[grant_id] = PendingGrant(
            session=request.cookies.get(SESSION_COOKIE, ""),
            namespace=ns,
            client_id=app.client_id,
            hub_id=account.hub_id,
            redirect_uri=areq.redirect_uri,
            state=q.get("state"),
            scopes=decision.granted,
            user_id=user.id,
        )
        scopes = [{"name": s, "grants": CATALOG[s].grants} for s in decision.granted]
        button = self.scenario.switches.consent_button
        return self.page(
            request,
            "consent.html.j2",
            app=app,
            account=account,
            scopes=scopes,
            grant_id=grant_id,
            button=button,
        )

    def render_decision(self, request: Request, decision: Decision, areq: AuthorizeRequest) -> Response:
        app = self.scenario.apps.get(areq.client_id)
        if decision.verdict is Verdict.REDIRECT_MISMATCH:
            message = (
                f"Authorization failed as the redirect URL '{areq.redirect_uri}' doesn't match the app's "
                "registered redirect URL. Please consult the app developer."
            )
            return self.error_page(request, message)
        if decision.verdict is Verdict.USER_LACKS_PERMISSIONS:
            if self.scenario.switches.denial_page == "legacy":
                return self.page(request, "denied_legacy.html.j2", 403)
            return self.page(request, "denied_2026.html.j2", 403, app=app, missing=decision.missing_permissions)
        if decision.verdict is Verdict.NEEDS_APPROVAL:
            return self.page(request, "needs_approval.html.j2", 403, app=app)
        return self.error_page(request, MESSAGES[decision.verdict])

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        grant = self.state.grants.pop(str(form.get("grant", "")), None)
        if grant is None or grant.session != request.cookies.get(SESSION_COOKIE, ""):
            return self.error_page(request, "This install link is no longer valid. Please try again.", 400)
        app = self.scenario.apps[grant.client_id]
        if form.get("action") != "approve":
            return self.page(request, "cancelled.html.j2", app=app)
        key = (grant.namespace, grant.client_id, grant.hub_id)
        self.state.installs.setdefault(key, set()).update(grant.scopes)
        code = self.state.new_code(
            CodeRecord(
                client_id=grant.client_id,
                redirect_uri=grant.redirect_uri,
                hub_id=grant.hub_id,
                user_id=grant.user_id,
                scopes=grant.scopes,
                expires_at=time.time() + self.options.code_ttl_s,
            )
        )
        params = {"code": code} | ({"state": grant.state} if grant.state is not None else {})
        sep = "&" if urlsplit(grant.redirect_uri).query else "?"
        return RedirectResponse(grant.redirect_uri + sep + urlencode(params), status_code=302)

    # -- token API -------------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return _api_error(
                415, "error", "Content-Type must be application/x-www-form-urlencoded", "VALIDATION_ERROR"
            )
        form = await request.form()
        fields: Mapping[str, str] = {k: str(v) for k, v in form.items()}
        app = self.scenario.apps.get(fields.get("client_id", ""))
        if app is None:
            return _api_error(
                400, "BAD_CLIENT_ID", "missing or unknown client id", "VALIDATION_ERROR", "invalid_request"
            )
        grant_type = fields.get("grant_type", "")
        if grant_type not in ("authorization_code", "refresh_token"):
            return _api_error(
                400, "BAD_GRANT_TYPE", "unsupported grant type", "VALIDATION_ERROR", "unsupported_grant_type"
            )
        if not hmac.compare_digest(app.client_secret.encode(), fields.get("client_secret", "").encode()):
            return _api_error(
                400,
                "BAD_CLIENT_SECRET",
                "missing or invalid client secret",
                "VALIDATION_ERROR",
                "invalid_client",
            )
        if grant_type == "refresh_token":
            record = self.state.refresh_tokens.get(fields.get("refresh_token", ""))
            if record is None or record.client_id != app.client_id:
                return _api_error(
                    400,
                    "BAD_REFRESH_TOKEN",
                    "missing or invalid refresh token",
                    "VALIDATION_ERROR",
                    "invalid_grant",
                )
            access = self.state.mint_access(record, self.options.access_ttl_s)
            return self._token_response(access, fields["refresh_token"], record)
        code = self.state.codes.get(fields.get("code", ""))
        if code is None or code.used or code.client_id != app.client_id or code.expires_at < time.time():
            return _api_error(400, "BAD_AUTH_CODE", "missing or invalid auth code", "VALIDATION_ERROR", "invalid_grant")
        if fields.get("redirect_uri", "") != code.redirect_uri:
            return _api_error(
                400, "BAD_REDIRECT_URI", "redirect_uri does not match", "VALIDATION_ERROR", "invalid_grant"
            )
        code.used = True
        record = TokenRecord(app.client_id, code.hub_id, code.user_id, code.scopes)
        refresh = self.state.mint_refresh(record)
        return self._token_response(self.state.mint_access(record, self.options.access_ttl_s), refresh, record)

    def _token_response(self, access: str, refresh: str, record: TokenRecord) -> JSONResponse:
        return JSONResponse(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": self.options.access_ttl_s,
                "token_type": "bearer",
                "hub_id": record.hub_id,
                "scopes": list(record.scopes),
            }
        )

    def _token_owner(self, user_id: str, hub_id: int) -> dict[str, Any]:
        user = self.scenario.users[user_id]
        return {
            "user": user.email,
            "hub_domain": f"hub-{hub_id}.hubspot.com",
            "hub_id": hub_id,
            "user_id": 10_000 + list(self.scenario.users).index(user_id),
        }

    async def access_token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        record = self.state.access_tokens.get(token)
        if record is None or record.expires_at < time.time():
            return _api_error(404, "error", "access token not found or expired", "OBJECT_NOT_FOUND")
        app = self.scenario.apps[record.client_id]
        owner = self._token_owner(record.user_id, record.hub_id)
        return JSONResponse(
            {
                "token": token,
                **owner,
                "scopes": list(record.scopes),
                "app_id": app.app_id,
                "expires_in": max(0, int(record.expires_at - time.time())),
                "token_type": "access",
                "is_private_distribution": False,
                "signed_access_token": {
                    "appId": app.app_id,
                    "hubId": record.hub_id,
                    "hublet": "na1",
                    "installingUserId": owner["user_id"],
                    "isUserLevel": False,
                    "scopes": list(record.scopes),
                },
            }
        )

    async def refresh_token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        record = self.state.refresh_tokens.get(token)
        if record is None:
            return _api_error(404, "error", "refresh token not found", "OBJECT_NOT_FOUND")
        if request.method == "DELETE":
            del self.state.refresh_tokens[token]
            return Response(status_code=204)
        owner = self._token_owner(record.user_id, record.hub_id)
        return JSONResponse(
            {
                "token": token,
                **owner,
                "scopes": list(record.scopes),
                "client_id": record.client_id,
                "token_type": "refresh",
            }
        )

    # -- test support ----------------------------------------------------------------------------------------

    async def sim_reset(self, request: Request) -> Response:
        ns = request.query_params.get("namespace")
        self.state.reset(ns)
        return JSONResponse({"reset": ns or "all"})

    async def sim_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
            faults = [Fault(path=str(f["path"]), kind=f["kind"], times=f.get("times")) for f in body.get("faults", [])]
            if any(f.kind not in FAULT_KINDS for f in faults):
                raise ValueError("kind")
            if any(f.times is not None and (type(f.times) is not int or f.times < 0) for f in faults):
                raise ValueError("times")
            latency = body.get("latency_s", self.options.latency_s)
            if type(latency) not in (int, float) or not 0 <= latency <= 60:
                raise ValueError("latency_s")
        except (ValueError, KeyError, TypeError, AttributeError):
            return _api_error(
                400,
                "error",
                "body must be {faults: [{path, kind, times?}], latency_s?}; kind: "
                + "|".join(FAULT_KINDS)
                + "; times: a whole number >= 0; latency_s: 0 to 60",
                "VALIDATION_ERROR",
            )
        self.options.faults[:] = faults
        self.options.latency_s = float(latency)
        return JSONResponse({"faults": len(faults), "latency_s": self.options.latency_s})

    # -- errors ----------------------------------------------------------------------------------------------

    def not_found_page(self, request: Request) -> Response:
        if request.url.path.startswith("/oauth/v1/"):
            return _api_error(404, "error", "resource not found", "OBJECT_NOT_FOUND")
        return self.page(request, "error.html.j2", 404, heading="This page isn’t available", message="Check the link.")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 500:
            log.error("simulator bug on %s %s: %r", request.method, request.url.path, exc)
        if code == 404:
            return self.not_found_page(request)
        if request.url.path.startswith("/oauth/v1/"):
            return _api_error(
                code, "error", "method not allowed" if code == 405 else "request failed", "VALIDATION_ERROR"
            )
        message = "That request method isn't supported here." if code == 405 else "Something went wrong. Try again."
        return self.page(request, "error.html.j2", code, heading=HEADING, message=message)


def create_app(scenario: Scenario, options: SimOptions | None = None) -> SimulatorApp:
    """Build a fresh simulator. Every call has its own state; nothing is shared between apps."""
    options = options or SimOptions()
    sim = Simulator(scenario, options)
    routes = [
        Route("/", sim.home),
        Route("/login", sim.login),
        Route("/login/email", sim.login_email, methods=["POST"]),
        Route("/login/password", sim.login_password, methods=["GET", "POST"]),
        Route("/login/2fa", sim.login_2fa, methods=["GET", "POST"]),
        Route("/login/remember", sim.login_remember, methods=["GET", "POST"]),
        Route("/cookie-consent", sim.cookie_consent, methods=["POST"]),
        Route("/oauth/authorize", sim.authorize),
        Route("/oauth/authorize/decision", sim.decide, methods=["POST"]),
        Route("/oauth/{hub_id}/authorize", sim.authorize),
        Route("/oauth/v1/token", sim.token, methods=["POST"]),
        Route("/oauth/v1/access-tokens/{token}", sim.access_token_info),
        Route("/oauth/v1/refresh-tokens/{token}", sim.refresh_token_info, methods=["GET", "DELETE"]),
    ]
    if options.test_support:
        routes += [
            Route("/__sim/reset", sim.sim_reset, methods=["POST"]),
            Route("/__sim/faults", sim.sim_faults, methods=["POST"]),
        ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: sim.http_error, Exception: sim.http_error})
    return SimulatorApp(app, sim)
