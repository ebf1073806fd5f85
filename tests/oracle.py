"""The simulator's rules as the oracle for our own tests (never used by the harness to classify)."""

from __future__ import annotations

from scopematrix.matrix import Cell, ScopeSetEntry
from scopematrix.model import Outcome
from scopematrix.rules.decide import Decision, Verdict, check_install, check_request
from scopematrix.rules.model import AuthorizeRequest
from scopematrix.simulator.scenario import Scenario

_MAP = {
    Verdict.ACCOUNT_LACKS_FEATURES: Outcome.DENIED_ACCOUNT,
    Verdict.USER_LACKS_PERMISSIONS: Outcome.DENIED_PERMISSIONS,
    Verdict.NEEDS_APPROVAL: Outcome.NEEDS_APPROVAL,
}


def decide(scenario: Scenario, cell: Cell, client_id: str, redirect: str, approved: set[str] | None = None) -> Decision:
    req = AuthorizeRequest(client_id, redirect, tuple(cell.scope_set.scopes), tuple(cell.scope_set.optional))
    early = check_request(scenario.apps, req)
    if early is not None:
        return early
    user = scenario.users[cell.user.id]
    member = user.membership(cell.account.hub_id)
    assert member is not None
    app = scenario.apps[client_id]
    return check_install(app, req, scenario.accounts[cell.account.hub_id], member, approved or set(), scenario.switches)


def expected_outcome(
    scenario: Scenario, cell: Cell, client_id: str, redirect: str, precondition: ScopeSetEntry | None = None
) -> Outcome:
    """`precondition`: the scope set the installed_by user approved first (default: the cell's own)."""
    if scenario.users[cell.user.id].deactivated:
        return Outcome.LOGIN_FAILED
    approved: set[str] = set()
    first = precondition or cell.scope_set
    if cell.scope_set.installed_by:
        installer = scenario.users[cell.scope_set.installed_by]
        member = installer.membership(cell.account.hub_id)
        assert member is not None
        req = AuthorizeRequest(client_id, redirect, tuple(first.scopes), tuple(first.optional))
        d = check_install(scenario.apps[client_id], req, scenario.accounts[cell.account.hub_id], member, set(),
                          scenario.switches)  # fmt: skip
        approved = set(d.granted) if d.verdict is Verdict.CONSENT else set()
    d = decide(scenario, cell, client_id, redirect, approved)
    if d.verdict is Verdict.CONSENT:
        return Outcome.GRANTED_PARTIAL if d.dropped_optional else Outcome.GRANTED
    return _MAP.get(d.verdict, Outcome.APP_MISCONFIGURED)
