"""The harness: one browser's worth of the flow's parts, put together. Each part has one job:

- browsing.py: the browser and its contexts;       - sessions.py: logins and each user's pooled pages;
- signin.py: the login screens;                     - walk.py: the hosted screens, to a decision;
- evidence.py: screenshots, HTML, trace and video;  - install.py: tokens, namespaces, shared installs;
- cell.py: one cell end to end, to its CellResult.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Browser

from scopematrix.flow.browsing import Contexts
from scopematrix.flow.cell import CellRunner
from scopematrix.flow.evidence import Evidence
from scopematrix.flow.install import Namespaces, SharedInstalls, TokenClient
from scopematrix.flow.records import FlowOptions, LoginFailure, StorageState, Walk, WalkPlan
from scopematrix.flow.sessions import PagePool, Sessions
from scopematrix.flow.signin import SignIn
from scopematrix.flow.walk import Walker
from scopematrix.matrix import Cell, Matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.redact import RedactingFilter, Redactor
from scopematrix.target import Target

LOGGERS = ("httpx", "httpcore", "scopematrix")


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
        login_slots: int = 4,
    ) -> None:
        self.target = target
        self.matrix = matrix
        self.run_dir = run_dir
        self.options = options
        self.run_id = run_id
        self.redact = Redactor(target.secrets())
        # Libraries that log what they send (httpx: the token-info URL) are scrubbed while the harness runs.
        self._log_filter = RedactingFilter(self.redact)
        for name in LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        self.contexts = Contexts(browser_factory, options.timeout_ms)
        evidence = Evidence(run_dir, self.redact)
        self.tokens = TokenClient(target.api_url, options.timeout_ms / 1000, self.redact)
        pool = PagePool(self.contexts, lambda context, page: self.walker.prepare(context, page))
        self.contexts.on_restart = pool.forget
        sign_in = SignIn(target, options, self.contexts, evidence)
        self.sessions = Sessions(target, sign_in, pool, options.shared_logins, logins_per_minute, login_slots)
        self.walker = Walker(target, options, self.sessions, evidence, self.tokens)
        self.namespaces = Namespaces(target, run_id, self.tokens.http)
        # Under xdist each worker's harness installs for its own cells.
        self.installs = SharedInstalls(self.namespaces, self.walker.walk, secrets.token_hex(4), target.main_app)
        self.cells = CellRunner(
            self.walker, self.sessions, self.installs, self.namespaces, options, run_dir, self.redact, matrix
        )

    @property
    def logins(self) -> int:
        return self.sessions.logins

    async def browser(self) -> Browser:
        return await self.contexts.browser()

    async def login(self, user_id: str, force: bool = False) -> StorageState | LoginFailure:
        return await self.sessions.login(user_id, force)

    def take_logins(self) -> dict[str, float]:
        return self.sessions.take_logins()

    async def walk(self, plan: WalkPlan) -> Walk:
        return await self.walker.walk(plan)

    async def run_cell(self, cell: Cell, expected: Outcome | None = None, reason: str = "") -> CellResult:
        return await self.cells.run(cell, expected, reason)

    def failed(self, cell: Cell, expected: Outcome | None, exc: BaseException) -> CellResult:
        return self.cells.failed(cell, expected, exc)

    async def close(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)
        self.sessions.pool.forget()  # their contexts close with the browser, all at once

        async def forget_installs() -> None:
            await self.namespaces.close()
            await self.tokens.close()  # (whose client made the resets)

        # Nothing walks any more: the browser closes while the simulator forgets the run's installs; both
        # finish before any trouble of either is raised.
        for done in await asyncio.gather(forget_installs(), self.contexts.close(), return_exceptions=True):
            if isinstance(done, BaseException):
                raise done
