"""The simulator's rules as the oracle for our own tests (never used by the harness to classify).

Every function takes the scenario, so the oracle changes when a rule switch does: the harness is checked
against the rules under each reading of what the brief leaves open, not against one markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scopematrix.matrix import AppEntry, Cell, Matrix, ScopeSetEntry
from scopematrix.model import Diagnosis, Outcome
from scopematrix.rules.decide import Decision, Verdict, approved_scopes, check_install, check_request
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
    early = check_request(scenario.apps, req, scenario.switches)
    if early is not None:
        return early
    member = scenario.users[cell.user.id].membership(cell.account.hub_id)
    assert member is not None
    account = scenario.accounts[cell.account.hub_id]
    return check_install(scenario.apps[req.client_id], req, account, member, approved or set(), scenario.switches)


def outcome_of(d: Decision) -> Outcome:
    if d.verdict is Verdict.CONSENT:
        return Outcome.GRANTED_PARTIAL if d.dropped_optional else Outcome.GRANTED
    return _MAP.get(d.verdict, Outcome.APP_MISCONFIGURED)


def approvals(scenario: Scenario, cell: Cell, matrix: Matrix, app: AppEntry | None = None) -> frozenset[str]:
    """What the cell's app (or `app`) has approved in the account when the cell runs: installs from before
    the run, and the installed_by user's install of the cell's scopes (with the same app)."""
    account = scenario.accounts[cell.account.hub_id]
    client = request(matrix, cell, app).client_id
    earlier: dict[str, set[str]] = {}
    if cell.scope_set.installed_by:
        member = scenario.users[cell.scope_set.installed_by].membership(cell.account.hub_id)
        assert member is not None
        first = request(matrix, cell, app)
        before = approved_scopes(account, client, {}, scenario.switches)
        d = check_install(scenario.apps[client], first, account, member, before, scenario.switches)
        earlier = {client: set(d.granted)} if d.verdict is Verdict.CONSENT else {}
    return approved_scopes(account, client, earlier, scenario.switches)


def expected_outcome(scenario: Scenario, cell: Cell, matrix: Matrix, app: AppEntry | None = None) -> Outcome:
    if scenario.users[cell.user.id].deactivated:
        return Outcome.LOGIN_FAILED
    req = request(matrix, cell, app)
    early = check_request(scenario.apps, req, scenario.switches)
    if early is not None:
        return outcome_of(early)
    member = scenario.users[cell.user.id].membership(cell.account.hub_id)
    assert member is not None
    account = scenario.accounts[cell.account.hub_id]
    d = check_install(scenario.apps[req.client_id], req, account, member, approvals(scenario, cell, matrix, app),
                      scenario.switches)  # fmt: skip
    return outcome_of(d)


@dataclass
class Truth:
    """What blocks a denied cell, for your app: `installer` (nothing installs, not even the base every
    install carries), or the scopes that block on their own, each with whose fault its screen says it is."""

    installer: bool = False
    scopes: dict[str, str] = field(default_factory=dict)  # scope -> account | user


def truth(scenario: Scenario, cell: Cell, matrix: Matrix, base: Sequence[str]) -> Truth:
    """`base`: what every probe carries (the probe app's declared required scopes). The cell's own app is
    asked hypothetically, past its URL checks, with its own approvals: your app's answer, not a probe app's."""
    req = request(matrix, cell)
    app = scenario.apps[req.client_id]
    account = scenario.accounts[cell.account.hub_id]
    member = scenario.users[cell.user.id].membership(cell.account.hub_id)
    assert member is not None
    approved = approvals(scenario, cell, matrix)

    def verdict(scopes: Sequence[str]) -> Verdict:
        hypothetical = AuthorizeRequest(req.client_id, req.redirect_uri, tuple(dict.fromkeys(scopes)), ())
        return check_install(app, hypothetical, account, member, approved, scenario.switches).verdict

    blocking = (Verdict.ACCOUNT_LACKS_FEATURES, Verdict.USER_LACKS_PERMISSIONS, Verdict.NEEDS_APPROVAL)
    candidates = [s for s in dict.fromkeys(cell.scope_set.scopes) if s not in base]
    at_base = verdict(base)
    cell_outcome = expected_outcome(scenario, cell, matrix)
    if at_base in blocking:
        if cell_outcome is not Outcome.DENIED_ACCOUNT or at_base is Verdict.ACCOUNT_LACKS_FEATURES:
            return Truth(installer=True)
        # Two blockers: the account screen comes back with these scopes (the user can't install at all).
        wanted = {s for s in candidates if verdict([*base, s]) is Verdict.ACCOUNT_LACKS_FEATURES}
        return Truth(scopes=dict.fromkeys(wanted, "account"))
    found = {}
    for s in candidates:
        v = verdict([*base, s])
        if v in blocking:
            found[s] = "account" if v is Verdict.ACCOUNT_LACKS_FEATURES else "user"
    return Truth(scopes=found)


def diagnosis_errors(d: Diagnosis | None, want: Truth) -> list[str]:
    """Where a diagnosis disagrees with the truth: empty when it names exactly the blocking scopes with the
    screen's attribution, or honestly says it cannot split (and a blocker is among its candidates)."""
    if d is None:
        return ["no diagnosis"]
    if want.installer:
        ok = not d.blocking_scopes and (d.attribution == "installer" or d.method == "app-settings")
        return [] if ok else [f"expected installer-level, got {d.summary}"]
    if d.blocking_scopes:
        errors = []
        if set(d.blocking_scopes) != set(want.scopes):
            errors.append(f"named {sorted(d.blocking_scopes)}, truth {sorted(want.scopes)}")
        for f in d.findings:
            if f.scope in want.scopes and f.level != want.scopes[f.scope]:
                errors.append(f"{f.scope}: {f.level}-level, the screen says {want.scopes[f.scope]}")
        return errors
    if d.method == "app-settings" and set(want.scopes) & set(d.candidates):
        return []  # "Blocked within {…}": a blocker is among them (the others "could not be tested")
    return [f"neither named nor honestly unsplit: {d.summary}"]
