"""The simulator as a Starlette app factory. All state lives in the returned app's SimState.

Rooms: base.py (rendering, the signed-in user, error pages), login.py, authorize.py (picker, consent,
denials), tokens.py (the token API); this module adds test support (reset, faults) and the ASGI wrapper.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scopematrix.simulator.authorize import AuthorizeRoutes
from scopematrix.simulator.base import api_error
from scopematrix.simulator.login import LoginRoutes
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.state import FAULT_KINDS, Fault, SimOptions
from scopematrix.simulator.tokens import TokenRoutes


class SimulatorApp:
    """The ASGI app: Starlette routes behind per-response latency and injected faults (test support)."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator
        self.options = simulator.options
        self.responses = 0  # HTTP requests served outside /__sim (the benchmark's lower bound counts them)

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.options.faults:
            exact = fault.path.endswith("$")  # "/$": the path "/" only, not every path under it
            hit = path == fault.path[:-1] if exact else path.startswith(fault.path)
            if hit and (fault.times is None or fault.times > 0):
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
        if fault is not None and fault.kind == "redirect":
            host = dict(scope.get("headers", [])).get(b"host", b"").decode()
            if fault.to and not fault.to.endswith("//" + host):  # (not again once it is there)
                query = ("?" + scope["query_string"].decode()) if scope.get("query_string") else ""
                location = (fault.to + scope["path"] + query).encode()
                await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location)]})
                await send({"type": "http.response.body", "body": b""})
                return
            fault = None
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
        if fault is not None and fault.kind == "stuck-controls":
            await self.app(scope, receive, _stuck_controls(send))
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


def _stuck_controls(send: Send) -> Send:
    """UI drift on a known screen: the controls that selecting something enables never enable."""
    start: MutableMapping[str, Any] = {}
    body = bytearray()

    async def stuck(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body"):
            return
        changed = bytes(body).replace(b"onchange=", b"data-onchange=")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(changed)).encode())]})
        await send({"type": "http.response.body", "body": changed})

    return stuck


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


class Simulator(LoginRoutes, AuthorizeRoutes, TokenRoutes):
    """Every route of the simulator, plus test support."""

    async def sim_reset(self, request: Request) -> Response:
        ns = request.query_params.get("namespace")
        self.state.reset(ns)
        return JSONResponse({"reset": ns or "all"})

    async def sim_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
            faults = [Fault(path=str(f["path"]), kind=f["kind"], times=f.get("times"), to=str(f.get("to", "")))
                      for f in body.get("faults", [])]  # fmt: skip
            if any(f.kind not in FAULT_KINDS for f in faults):
                raise ValueError("kind")
            if any(f.times is not None and (type(f.times) is not int or f.times < 0) for f in faults):
                raise ValueError("times")
            latency = body.get("latency_s", self.options.latency_s)
            if type(latency) not in (int, float) or not 0 <= latency <= 60:
                raise ValueError("latency_s")
        except (ValueError, KeyError, TypeError, AttributeError):
            return api_error(
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
        Route("/oauth/authorize/choose", sim.choose),
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
