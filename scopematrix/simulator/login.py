"""The login screens: email, password, 2FA and "remember this device", the home page, and the cookie banner."""

from __future__ import annotations

import hmac
import secrets

import pyotp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scopematrix.simulator.base import (
    BANNER_COOKIE,
    DEVICE_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SimBase,
    safe_next,
)
from scopematrix.simulator.state import PendingLogin


class LoginRoutes(SimBase):
    async def home(self, request: Request) -> Response:
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=302)
        return self.page(request, "home.html.j2", name=user.name)

    async def login(self, request: Request) -> Response:
        nxt = safe_next(request.query_params.get("loginRedirectUrl"))
        if self.current_user(request) is not None:
            return RedirectResponse(nxt, status_code=302)
        return self.page(request, "login_email.html.j2", next=nxt, email="", error=None)

    async def login_email(self, request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", "")).strip()
        nxt = safe_next(str(form.get("loginRedirectUrl", "")))
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
        response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(BANNER_COOKIE, "accept" if form.get("choice") == "accept" else "decline")
        return response
