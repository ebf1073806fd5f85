"""What every route of the simulator shares: the scenario, options and state, rendering, the signed-in user,
and the error pages."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from scopematrix.rules.model import User
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.state import SimOptions, SimState

log = logging.getLogger("scopematrix.simulator")
HEADING = "Couldn’t complete the connection"
ISOLATION_HEADER = "x-scopematrix-isolation"
SESSION_COOKIE = "hs_session"
LOGIN_COOKIE = "hs_login"
DEVICE_COOKIE = "hs_2fa_device"
BANNER_COOKIE = "__hs_cookie_cat_pref"


def split_scopes(raw: str | None) -> tuple[str, ...]:
    # Space- or plus-separated; Starlette already turned '+' into ' ' when decoding the query.
    return tuple(dict.fromkeys(s for s in (raw or "").replace("+", " ").split() if s))


def safe_next(value: str | None) -> str:
    """Only same-site relative paths: login must never become an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def api_error(status_code: int, status: str, message: str, category: str, error: str | None = None) -> JSONResponse:
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


class SimBase:
    """Request handlers over one scenario, one options object and one state."""

    def __init__(self, scenario: Scenario, options: SimOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.state = SimState()
        self.templates = Environment(
            loader=PackageLoader("scopematrix.simulator", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )

    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("show_cookie_banner", BANNER_COOKIE not in request.cookies)
        ctx.setdefault("markup", self.scenario.rendering.markup)
        ctx.setdefault("rendering", self.scenario.rendering)
        ctx.setdefault(
            "current_path",
            safe_next(request.url.path + ("?" + request.url.query if request.url.query else "")),
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

    def not_found_page(self, request: Request) -> Response:
        if request.url.path.startswith("/oauth/v1/"):
            return api_error(404, "error", "resource not found", "OBJECT_NOT_FOUND")
        return self.page(request, "error.html.j2", 404, heading="This page isn’t available", message="Check the link.")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 500:
            log.error("simulator bug on %s %s: %r", request.method, request.url.path, exc)
        if code == 404:
            return self.not_found_page(request)
        if request.url.path.startswith("/oauth/v1/"):
            return api_error(
                code, "error", "method not allowed" if code == 405 else "request failed", "VALIDATION_ERROR"
            )
        message = "That request method isn't supported here." if code == 405 else "Something went wrong. Try again."
        return self.page(request, "error.html.j2", code, heading=HEADING, message=message)
