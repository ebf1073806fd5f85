"""One cell end to end: its precondition install, its walk (retried after infrastructure trouble), and the
CellResult that records it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from scopematrix.flow.install import Namespaces, SharedInstalls
from scopematrix.flow.records import FlowOptions, LoginFailure, Walk, WalkPlan, attempt_folder, authorize_url
from scopematrix.flow.sessions import Sessions
from scopematrix.flow.walk import Walker
from scopematrix.matrix import Cell, Matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.redact import Redactor


class CellRunner:
    def __init__(
        self,
        walker: Walker,
        sessions: Sessions,
        installs: SharedInstalls,
        namespaces: Namespaces,
        options: FlowOptions,
        run_dir: Path,
        redact: Redactor,
        matrix: Matrix,
    ) -> None:
        self.matrix = matrix
        self.walker = walker
        self.sessions = sessions
        self.installs = installs
        self.namespaces = namespaces
        self.options = options
        self.run_dir = run_dir
        self.redact = redact
        # Told of every look a cell takes in its precondition's shared namespace, as it starts: the same
        # answer a probe of the same request there would get. It returns what to call with the decision
        # (None: none came). The diagnoses' probe cache listens.
        self.on_look: Callable[[WalkPlan], Callable[[Outcome | None], None]] = lambda _plan: lambda _seen: None

    async def run(self, cell: Cell, expected: Outcome | None = None, reason: str = "") -> CellResult:
        started = time.monotonic()
        attempts = 0
        walk = Walk(Outcome.ERROR)
        note = ""
        timings: dict[str, float] = {}
        while attempts <= self.options.retries:
            attempts += 1
            ns = self.namespaces.name(cell.id, f"a{attempts}")
            folder = attempt_folder(self.run_dir, cell.id, attempts)
            t0 = time.monotonic()
            plan = WalkPlan.for_cell(
                cell, namespace=ns, approve=self.options.approve, folder=folder,
                tracing=self.options.tracing != "off", video=self.options.video != "off",
            )  # fmt: skip
            note = ""
            if cell.scope_set.installed_by and not isinstance(self.sessions.known(cell.user.id), LoginFailure):
                pre, plan = await self._precondition(cell, plan)
                timings["precondition_s"] = round(time.monotonic() - t0, 3)
                if pre.outcome.infrastructure:
                    # An outage during the precondition says nothing about this cell: infrastructure, retried.
                    # A screen no page object knows there is one: the cell can't be decided until they learn it.
                    walk = Walk(pre.outcome, heading=pre.heading, captures=pre.captures, html_path=pre.html_path,
                                drift=pre.drift)  # fmt: skip
                    walk.message = f"precondition: {installer_of(cell)}'s install failed: {pre.message}"
                    walk.error = walk.message if pre.outcome is Outcome.ERROR else ""
                    if plan.approve:
                        await self.namespaces.reset(ns)
                    if walk.drift:
                        break
                    continue
                if not pre.outcome.installs:
                    note = f"precondition: {installer_of(cell)} could not install ({pre.outcome.value}). "
            t1 = time.monotonic()
            # (A deliberately misconfigured scope set asks with another client or redirect: never a probe's request.)
            probe_like = not plan.approve and plan.client_id is None and plan.redirect_uri is None
            seen = self.on_look(plan) if cell.scope_set.installed_by and probe_like else None
            decided: Outcome | None = None
            try:
                walk = await self.walker.walk(plan)
                decided = walk.outcome if walk.outcome.blocked or walk.outcome.installs else None
            finally:
                if seen is not None:
                    seen(decided)
            timings["flow_s"] = round(time.monotonic() - t1, 3)
            timings["navigations"] = float(walk.navigations)
            if plan.approve:
                await self.namespaces.reset(ns)  # installs left state in this cell's namespace; a look leaves none
            if not walk.outcome.infrastructure or walk.drift:
                break  # a decision, or UI drift: a second attempt would meet the same control
        url = authorize_url(self.walker.target, WalkPlan.for_cell(cell), self.options.pinned, "REDACTED")
        trace = attempt_folder(self.run_dir, cell.id, attempts) / "trace.zip"
        return dataclasses.replace(
            self._record(cell, expected),
            outcome=walk.outcome,
            heading=walk.heading,
            message=note + walk.message,
            missing_permissions=walk.missing_permissions,
            offered_scopes=walk.offered,
            granted_scopes=walk.granted,
            screenshots=tuple(walk.captures),
            expectation_reason=reason,
            attempts=attempts,
            duration_s=round(time.monotonic() - started, 3),
            authorize_url=url,
            error=walk.error,
            html_path=walk.html_path,
            trace_path=str(trace.relative_to(self.run_dir)) if trace.exists() else "",
            timings=timings,
        )

    async def _precondition(self, cell: Cell, plan: WalkPlan) -> tuple[Walk, WalkPlan]:
        """The scope set's install by its installer before the cell: the cell's own when the cell installs
        too (which changes what the next cell sees), else the install its scope set's cells share."""
        if plan.approve:
            assert plan.namespace is not None
            own = WalkPlan.for_cell(cell, installer_of(cell), namespace=plan.namespace, approve=True, exchange=False)
            return await self.walker.walk(own), plan
        ns, pre = await self.installs.get(cell)
        return pre, dataclasses.replace(plan, namespace=ns)

    def failed(self, cell: Cell, expected: Outcome | None, exc: BaseException) -> CellResult:
        """A cell whose run raised: infrastructure trouble with the reason, never a lost cell."""
        reason = self.redact(f"harness error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return dataclasses.replace(self._record(cell, expected), message=reason, error=reason)

    def _record(self, cell: Cell, expected: Outcome | None) -> CellResult:
        """The cell's record before anything is known of it: an error until a walk says otherwise."""
        app_name = self.matrix.app_of(cell.scope_set).name
        return CellResult(
            cell_id=cell.id, user=cell.user.id, role=cell.user.role, account=cell.account.id,
            hub_id=cell.account.hub_id, scope_set=cell.scope_set.id, requested_scopes=tuple(cell.scope_set.scopes),
            optional_scopes=tuple(cell.scope_set.optional), outcome=Outcome.ERROR, expected=expected,
            installed_by=cell.scope_set.installed_by, finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            customer_role=cell.user.customer_kind, account_products=cell.account.products,
            app_name=app_name, scope_set_label=cell.scope_set.description,
        )  # fmt: skip


def installer_of(cell: Cell) -> str:
    return cell.scope_set.installed_by or ""
