"""The simulator's rules as the oracle for our own tests (never used by the harness to classify)."""

from __future__ import annotations

from scopematrix.matrix import AppEntry, Cell, Matrix, ScopeSetEntry
from scopematrix.model import Outcome
from scopematrix.rules.decide import Decision, Verdict, check_install, check_request
from scopematrix.rules.model import AuthorizeRequest
from scopematrix.simulator.scenario import Scenario

_MAP = {
    Verdict.ACCOUNT_LACKS_FEATURES: Outcome.DENIED_ACCOUNT,
    Verdict.USER_LACKS_PERMISSIONS: Outcome.DENIED_PERMISSIONS,
    Verdict.NEEDS_APPROVAL: Outcome.NEEDS_APPROVAL,
}


def request(matrix: Matrix, cell: Cell, app: AppEntry | None = None, scope_set: ScopeSetEntry | None = None):
    """The authorize request the harness sends for a cell: its app (or `app`), with the scope set's overrides."""
    s = scope_set or cell.scope_set
    entry = app or matrix.app_of(s)
    client_id = (s.client_id if app is None else None) or entry.client_id or ""
    redirect = (s.redirect_uri if app is None else None) or entry.redirect_uri
    optional = tuple(s.optional) if app is None else ()
    return AuthorizeRequest(client_id, redirect, tuple(s.scopes), optional)


def decide(scenario: Scenario, cell: Cell, req: AuthorizeRequest, approved: set[str] | None = None) -> Decision:
    early = check_request(scenario.apps, req)
    if early is not None:
        return early
    member = scenario.users[cell.user.id].membership(cell.account.hub_id)
    assert member is not None
    app = scenario.apps[req.client_id]
    return check_install(app, req, scenario.accounts[cell.account.hub_id], member, approved or set(), scenario.switches)


def expected_outcome(
    scenario: Scenario,
    cell: Cell,
    matrix: Matrix,
    precondition: ScopeSetEntry | None = None,
    app: AppEntry | None = None,
) -> Outcome:
    """`precondition`: the scope set the installed_by user approved first (default: the cell's own);
    `app`: send the cell's scopes through another app (the probe app), without optional scopes."""
    if scenario.users[cell.user.id].deactivated:
        return Outcome.LOGIN_FAILED
    approved: set[str] = set()
    if cell.scope_set.installed_by:
        installer = scenario.users[cell.scope_set.installed_by]
        member = installer.membership(cell.account.hub_id)
        assert member is not None
        first = request(matrix, cell, app, precondition or cell.scope_set)
        d = check_install(scenario.apps[first.client_id], first, scenario.accounts[cell.account.hub_id], member,
                          set(), scenario.switches)  # fmt: skip
        approved = set(d.granted) if d.verdict is Verdict.CONSENT else set()
    d = decide(scenario, cell, request(matrix, cell, app), approved)
    if d.verdict is Verdict.CONSENT:
        return Outcome.GRANTED_PARTIAL if d.dropped_optional else Outcome.GRANTED
    return _MAP.get(d.verdict, Outcome.APP_MISCONFIGURED)
