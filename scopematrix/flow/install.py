"""Installs: the code exchanged for tokens through HubSpot's public token API (then revoked), and the
`installed_by` installs that cells share, each in a namespace of its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from scopematrix.flow.records import Walk, WalkPlan
from scopematrix.matrix import Cell
from scopematrix.redact import Redactor
from scopematrix.target import AppCredentials, Target


class TokenTrouble(Exception):
    """The token API answered, but not as documented (brief section 4)."""


class TokenClient:
    """The public token API: exchange a code, read the granted scopes, revoke the refresh token. Any trouble
    is TokenTrouble or httpx.HTTPError: infrastructure, never a HubSpot decision."""

    def __init__(self, api_url: str, timeout_s: float, redact: Redactor) -> None:
        self.api = api_url
        self.http = httpx.AsyncClient(timeout=timeout_s)
        self.redact = redact

    async def granted_scopes(self, app: AppCredentials, redirect_uri: str, code: str) -> tuple[str, ...]:
        form = {
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        response = await self.http.post(f"{self.api}/oauth/v1/token", data=form)
        if response.status_code != 200:
            raise TokenTrouble(f"token exchange failed: HTTP {response.status_code} {response.text[:200]}")
        tokens = _json_object(response, "token exchange")
        access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
        self.redact.add(t for t in (access, refresh) if isinstance(t, str))  # before anything logs them
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise TokenTrouble("token exchange answered without access_token and refresh_token")
        info = await self.http.get(f"{self.api}/oauth/v1/access-tokens/{access}")
        source = _json_object(info, "token info") if info.status_code == 200 else tokens
        scopes = source.get("scopes")
        if not isinstance(scopes, list):
            raise TokenTrouble(f"token info failed: HTTP {info.status_code}, and the token carries no scopes")
        revoke = await self.http.delete(f"{self.api}/oauth/v1/refresh-tokens/{refresh}")
        if revoke.status_code >= 300:
            raise TokenTrouble(f"revoking the refresh token failed: HTTP {revoke.status_code}")
        return tuple(str(s) for s in scopes)

    async def close(self) -> None:
        await self.http.aclose()


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise TokenTrouble(f"{what} answered HTTP {response.status_code} with something that isn't JSON") from None
    if not isinstance(data, dict):
        raise TokenTrouble(f"{what} answered JSON that isn't an object")
    return data


class Namespaces:
    """The simulator's isolation namespaces of one run (on live HubSpot there are none: reset does nothing)."""

    def __init__(self, target: Target, run_id: str, http: httpx.AsyncClient) -> None:
        self.target = target
        self.run_id = run_id
        self.http = http
        self._shared: list[str] = []

    def name(self, *parts: str) -> str:
        return "/".join((self.run_id, *parts))

    def shared(self, *parts: str) -> str:
        """A namespace whose installs several walks share, until the harness closes (then it is reset)."""
        ns = self.name(*parts)
        if ns not in self._shared:
            self._shared.append(ns)
        return ns

    async def close(self) -> None:
        await asyncio.gather(*(self.reset(ns) for ns in self._shared))  # (each a round trip: all at once)

    async def reset(self, namespace: str) -> None:
        if self.target.isolation:
            try:
                await self.http.post(f"{self.target.app_url}/__sim/reset", params={"namespace": namespace})
            except httpx.HTTPError:
                pass


class SharedInstalls:
    """Installs that walks share, each made once per run for what it installs (installer, account, app, scopes
    and optional scopes), in a namespace of its own where nothing else is ever installed: a scope set's
    precondition, which the cells that follow it only look at (as on HubSpot, where the app stays installed);
    the same install made again for a diagnosis's probes, or as a super admin's first install for a remedy,
    is that one. One that failed for infrastructure is made afresh, in a new namespace, by the next request."""

    def __init__(
        self, namespaces: Namespaces, walk: Callable[[WalkPlan], Awaitable[Walk]], tag: str, main_app: str
    ) -> None:
        self.namespaces = namespaces
        self.walk = walk
        self.tag = tag  # under xdist each worker's harness installs for its own cells
        self.main_app = main_app
        self._installs: dict[WalkPlan, tuple[str, asyncio.Task[Walk]]] = {}  # key: namespace, install
        self._made = 0

    async def get(self, cell: Cell) -> tuple[str, Walk]:
        """The cell's precondition: the namespace its installer's install is in, and that install's walk."""
        return await self.made(WalkPlan.for_cell(cell, cell.scope_set.installed_by, approve=True, exchange=False))

    async def made(
        self,
        install: WalkPlan,
        slot: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None,
        tally: list[int] | None = None,
    ) -> tuple[str, Walk]:
        """The namespace `install` (a plan without one) is made in, and its walk: made once, and counted in the
        `tally` of whoever makes it. `slot`: the maker takes it before the install exists and holds it while it
        is made (a diagnosis's bound); a cell, already in its slot, gives none. The install's own walk never
        waits for a slot, so a cell that waits for it in its slot can't hold up the slot it needs."""
        key = dataclasses.replace(install, namespace=None, app=install.app or self.main_app)
        if slot is not None and key not in self._installs:
            async with slot():
                if key not in self._installs:  # (else a cell made it while this waited for the slot)
                    return await self._make(key, install, tally)
        return await self._make(key, install, tally)

    async def _make(self, key: WalkPlan, install: WalkPlan, tally: list[int] | None) -> tuple[str, Walk]:
        if key not in self._installs:
            ns = self.namespaces.shared("install", self.tag, key.app, str(self._made))  # (afresh after a failure)
            self._made += 1
            self._installs[key] = (ns, asyncio.ensure_future(self.walk(dataclasses.replace(install, namespace=ns))))
            if tally is not None:
                tally[0] += 1
        entry = ns, task = self._installs[key]
        try:
            made = await asyncio.shield(task)  # (a walk cancelled while waiting leaves the install to the others)
        except Exception:
            self._forget(key, entry)
            raise
        if made.outcome.infrastructure:
            self._forget(key, entry)
        return ns, made

    def _forget(self, key: WalkPlan, entry: tuple[str, asyncio.Task[Walk]]) -> None:
        """A failed install: the next request makes it afresh (unless another already has)."""
        if self._installs.get(key) is entry:
            del self._installs[key]
