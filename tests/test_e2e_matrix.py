"""Browser tests: the harness against the simulator, checked with the rules as the oracle."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink, read_results
from scopematrix.flow import FlowOptions
from scopematrix.flow.walk import ISOLATION_HEADER
from scopematrix.matrix import Cell, load_matrix
from scopematrix.model import Outcome
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import SimulatorApp, create_app
from scopematrix.simulator.scenario import Scenario, ScenarioSpec, SwitchesSpec
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import Fault, SimOptions
from tests.oracle import decide, expected_outcome, request

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()


def run_cells(
    scenario: Scenario,
    cells: list[Cell],
    run_dir: Path,
    approve: bool = False,
    diagnose: bool = True,
    app: SimulatorApp | None = None,
    concurrency: int = 4,
    tracing: str = "off",
):
    choice = find_browser(headless=True)
    assert choice is not None, "make setup installs a browser"
    with SimServer(app or create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(MATRIX, scenario, server.url, MATRIX.users_needed(cells))
        engine = Engine(
            target=target,
            matrix=MATRIX,
            run_dir=run_dir,
            run_id="t",
            flow=FlowOptions(approve=approve, grace_s=2.0, tracing=tracing),
            browser=BrowserOptions(choice.executable_path),
            concurrency=concurrency,
            diagnose=diagnose,
            sink=ResultSink(run_dir / "results-main.jsonl"),
        )
        engine.start()
        try:
            results = engine.run_all(cells)
            stats = engine.stats
        finally:
            engine.stop()
    return results, stats, target


@contextlib.contextmanager
def started_engine(run_dir: Path, scenario: Scenario) -> Iterator[Engine]:
    """An engine against a fresh simulator, started, with no cell submitted (one context, no diagnosis);
    stopped at the end unless the test stopped it."""
    choice = find_browser(headless=True)
    assert choice is not None
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(MATRIX, scenario, server.url, set())
        engine = Engine(target=target, matrix=MATRIX, run_dir=run_dir, run_id="t", flow=FlowOptions(grace_s=2.0),
                        browser=BrowserOptions(choice.executable_path), concurrency=1, diagnose=False,
                        sink=None)  # fmt: skip
        try:
            yield engine.start()
        finally:
            engine.stop()


def pick(*ids: str) -> list[Cell]:
    by_id = {c.id: c for c in MATRIX.cells()}
    return [by_id[i] for i in ids]


ORACLE_CELLS = [
    "super-admin@free/seed-app",  # account-only denial
    "sales-admin@marketing-pro/seed-app",  # user-only denial, two blocking scopes
    "admin-no-marketplace@marketing-pro/crm-read",
    "admin-no-marketplace@marketing-pro/crm-after-super-admin",
    "restricted@enterprise/crm-read",  # App Governance
    "admin-marketplace@marketing-pro/deals-owners",  # optional scopes dropped
    "super-admin@enterprise/social-in-scope",  # misconfigured install URL
    "former-employee@marketing-pro/crm-read",  # login fails
    "totp-admin@enterprise/custom-objects",  # TOTP login, enterprise-only scopes
    "admin-marketplace@free/marketing-automation",
]


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory, scenario):
    run_dir = tmp_path_factory.mktemp("run")
    results, stats, target = run_cells(scenario, pick(*ORACLE_CELLS), run_dir)
    return {r.cell_id: r for r in results}, stats, target, run_dir


def test_every_outcome_kind_matches_the_rules_oracle(oracle_run, scenario):
    results, _, target, _ = oracle_run
    for cell in pick(*ORACLE_CELLS):
        want = expected_outcome(scenario, cell, MATRIX)
        assert results[cell.id].outcome is want, cell.id
    kinds = {r.outcome for r in results.values()}
    assert kinds >= {
        Outcome.GRANTED,
        Outcome.GRANTED_PARTIAL,
        Outcome.DENIED_ACCOUNT,
        Outcome.DENIED_PERMISSIONS,
        Outcome.NEEDS_APPROVAL,
        Outcome.APP_MISCONFIGURED,
        Outcome.LOGIN_FAILED,
    }


def test_each_user_logs_in_once_and_every_cell_has_a_decisive_screenshot(oracle_run):
    results, stats, _, run_dir = oracle_run
    # Exactly one login per user that took part (cells' users plus the super admin diagnosis asks).
    assert stats["logins"] == len(MATRIX.users_needed(pick(*ORACLE_CELLS)))
    assert sum(r.timings.get("logins", 0) for r in results.values()) == stats["logins"]  # each on a record
    for r in results.values():
        assert r.decisive is not None and (run_dir / r.decisive.path).is_file(), r.cell_id
    assert len(read_results([run_dir / "results-main.jsonl"])) == len(ORACLE_CELLS)


def test_diagnosis_agrees_with_the_oracle(oracle_run, scenario):
    results, _, target, _ = oracle_run
    two = results["sales-admin@marketing-pro/seed-app"].diagnosis
    seed = pick("sales-admin@marketing-pro/seed-app")[0]
    truth = decide(scenario, seed, request(MATRIX, seed, MATRIX.spec.probe_app))
    assert two is not None and set(two.blocking_scopes) == set(truth.blocking_scopes) == {"forms", "content"}
    assert two.attribution == "user"
    assert two.search_probes <= 2 * 1 + 2 * 2  # d*ceil(log2(n/d)) + 2d with n=4, d=2
    account = results["super-admin@free/seed-app"].diagnosis
    assert account is not None and account.blocking_scopes == ("content",) and account.attribution == "account"
    assert "Marketing Professional" in account.findings[0].hint
    installer = results["admin-no-marketplace@marketing-pro/crm-read"].diagnosis
    assert installer is not None and installer.attribution == "installer"
    fix = next(r for r in installer.remedies if r.kind == "super_admin_first")
    assert fix.verified is True


def test_no_secret_reaches_any_artifact(oracle_run):
    _, _, target, run_dir = oracle_run
    secrets = target.secrets()
    assert secrets
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            text = path.read_bytes().decode("utf-8", "replace")
            for s in secrets:
                assert s not in text, f"{s[:4]}… in {path}"
            assert "code=na1-" not in text


def test_older_ui_generations_are_understood(tmp_path, scenario):
    spec = ScenarioSpec.model_validate(
        {**_spec_dict(scenario), "switches": SwitchesSpec(denial_page="legacy", consent_button="Grant access")}
    )
    old = Scenario(spec)
    results, _, _ = run_cells(
        old,
        pick("super-admin@marketing-pro/crm-read", "admin-no-marketplace@marketing-pro/crm-read"),
        tmp_path,
        diagnose=False,
    )
    by_id = {r.cell_id: r for r in results}
    assert by_id["super-admin@marketing-pro/crm-read"].outcome is Outcome.GRANTED
    denied = by_id["admin-no-marketplace@marketing-pro/crm-read"]
    assert denied.outcome is Outcome.DENIED_PERMISSIONS and "correct role" in denied.message


def test_approve_exchanges_the_code_and_reads_granted_scopes(tmp_path, scenario):
    results, _, _ = run_cells(
        scenario, pick("admin-marketplace@marketing-pro/deals-owners"), tmp_path, approve=True, diagnose=False
    )
    r = results[0]
    assert r.outcome is Outcome.GRANTED_PARTIAL
    assert r.granted_scopes == ("oauth", "crm.objects.contacts.read", "crm.objects.deals.read")


def _spec_dict(scenario: Scenario) -> dict:
    import yaml

    assert scenario.source is not None
    return yaml.safe_load(scenario.source.read_text())


def test_through_the_account_picker_with_totp_to_the_redirect(tmp_path, scenario):
    """Not pinned to a Hub ID: HubSpot shows the picker; choose the account, consent, redirect, tokens."""
    choice = find_browser(headless=True)
    assert choice is not None
    cell = pick("totp-admin@enterprise/deals-owners")
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(MATRIX, scenario, server.url, {"totp-admin"})
        engine = Engine(target=target, matrix=MATRIX, run_dir=tmp_path, run_id="t",
                        flow=FlowOptions(approve=True, pinned=False), browser=BrowserOptions(choice.executable_path),
                        concurrency=1, diagnose=False, sink=None)  # fmt: skip
        engine.start()
        try:
            (result,) = engine.run_all(cell)
        finally:
            engine.stop()
    screens = [c.screen.value for c in result.screenshots]
    assert screens == ["account_picker", "consent"], screens
    # Sales Enterprise has leads; users.read is for super admins only, so it is dropped: partial.
    assert result.outcome is Outcome.GRANTED_PARTIAL
    assert result.granted_scopes == (
        "oauth", "crm.objects.contacts.read", "crm.objects.deals.read", "crm.objects.leads.read"
    )  # fmt: skip


class ConsentDecisions:
    """Counts the consent decisions posted to the simulator (each install posts one)."""

    def __init__(self, app: SimulatorApp) -> None:
        self.inner, self.posts = app.app, 0
        app.app = self

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/oauth/authorize/decision":
            self.posts += 1
        await self.inner(scope, receive, send)


AFTER_SUPER_ADMIN = [
    c for c in MATRIX.select(accounts=["marketing-pro"], scope_sets=["crm-after-super-admin"])
    if c.user.id != "former-employee"  # (whose login fails: no precondition is made for them)
]  # fmt: skip


@pytest.mark.parametrize("approve", [False, True], ids=["look", "approve"])
def test_a_precondition_install_is_made_once_per_account_and_scope_set(tmp_path, scenario, approve):
    """Cells that only look at consent share the super admin's install; cells that install themselves
    (--approve) each get an install of their own, since theirs changes what the next cell would see."""
    app = create_app(scenario, SimOptions(test_support=True))
    decisions = ConsentDecisions(app)
    results, _, _ = run_cells(scenario, AFTER_SUPER_ADMIN, tmp_path, approve=approve, diagnose=False, app=app)
    assert len(results) == 5
    for cell, result in zip(AFTER_SUPER_ADMIN, results, strict=True):
        assert result.outcome is expected_outcome(scenario, cell, MATRIX), cell.id
        assert "precondition" not in result.message and result.attempts == 1, result
    if approve:  # one install per cell, and each cell that reaches consent posts its own decision
        own = sum(r.outcome.installs for r in results)
        assert own > 0 and decisions.posts == len(results) + own
    else:
        assert decisions.posts == 1


def test_a_shared_install_lost_to_an_outage_is_made_afresh_by_the_next_attempt(tmp_path, scenario):
    app = create_app(scenario, SimOptions(test_support=True, faults=[Fault("/oauth/authorize/decision", "5xx", 1)]))
    decisions = ConsentDecisions(app)
    results, _, _ = run_cells(scenario, AFTER_SUPER_ADMIN, tmp_path, diagnose=False, app=app)
    for cell, result in zip(AFTER_SUPER_ADMIN, results, strict=True):
        assert result.outcome is expected_outcome(scenario, cell, MATRIX), result
    assert app.options.faults[0].times == 0 and decisions.posts == 1  # the outage took one; one made afresh
    assert any(r.attempts == 2 for r in results)  # the cells that waited for the failed one were retried


def test_a_diagnosis_walk_reads_only_what_decides_its_outcome(tmp_path, scenario):
    """A probe keeps its outcome only, so it reads no message, no missing permissions and (with no optional
    scope, which alone can make consent partial) no scope list; its outcome is the one a cell's walk gets."""
    import asyncio

    from scopematrix.flow import WalkPlan

    choice = find_browser(headless=True)
    assert choice is not None
    cells = pick("admin-no-marketplace@marketing-pro/crm-read", "admin-marketplace@marketing-pro/deals-owners")
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(MATRIX, scenario, server.url, MATRIX.users_needed(cells))
        engine = Engine(target=target, matrix=MATRIX, run_dir=tmp_path, run_id="t", flow=FlowOptions(grace_s=2.0),
                        browser=BrowserOptions(choice.executable_path), concurrency=2, diagnose=False,
                        sink=None)  # fmt: skip
        engine.start()
        try:
            harness = engine.harness
            assert harness is not None

            def walk(plan: WalkPlan):
                return asyncio.run_coroutine_threadsafe(harness.walk(plan), engine._loop).result(60)

            denied, partial = (WalkPlan.for_cell(c) for c in cells)
            full, probe = walk(denied), walk(dataclasses.replace(denied, outcome_only=True))
            assert full.outcome is probe.outcome is Outcome.DENIED_PERMISSIONS
            assert full.message and full.heading and not probe.message and not probe.heading
            assert not probe.missing_permissions and not probe.captures
            # Optional scopes: the list is read, since only it can say the install would be partial.
            full, probe = walk(partial), walk(dataclasses.replace(partial, outcome_only=True))
            assert full.outcome is probe.outcome is Outcome.GRANTED_PARTIAL and probe.offered == full.offered
            # None: the outcome is the same, and the list is left unread.
            plain = dataclasses.replace(partial, optional=())
            full, probe = walk(plain), walk(dataclasses.replace(plain, outcome_only=True))
            assert full.outcome is probe.outcome is Outcome.GRANTED and full.offered and probe.offered is None
        finally:
            engine.stop()


def test_a_super_admin_first_install_is_made_once_for_every_user_it_may_help(tmp_path, scenario):
    """Two users refused the same scope set for a missing installer right: the super admin's first install is
    made once, in a namespace the two remedies share (their probes only look at consent), and each remedy
    says what happened to its own user afterwards."""
    app = create_app(scenario, SimOptions(test_support=True))
    decisions = ConsentDecisions(app)
    cells = pick("restricted@marketing-pro/crm-read", "admin-no-marketplace@marketing-pro/crm-read")
    results, _, _ = run_cells(scenario, cells, tmp_path, app=app)
    assert decisions.posts == 1  # the one install of the two remedies (crm-read has no precondition)
    assert not app.simulator.state.installs  # the shared namespace was reset when the harness closed
    for cell, result in zip(cells, results, strict=True):
        assert result.diagnosis is not None and result.diagnosis.attribution == "installer", result.diagnosis
        fix = next(r for r in result.diagnosis.remedies if r.kind == "super_admin_first")
        # The matrix's crm-after-super-admin is crm-read after the super admin's install: the oracle's answer.
        (after,) = pick(f"{cell.user.id}@marketing-pro/crm-after-super-admin")
        assert fix.verified is expected_outcome(scenario, after, MATRIX).installs, fix
        assert cell.user.id in fix.summary


class DecisionsByNamespace(ConsentDecisions):
    """The consent decisions posted, per isolation namespace (the header every walk of a namespace sends)."""

    def __init__(self, app: SimulatorApp) -> None:
        super().__init__(app)
        self.by_namespace: dict[str, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/oauth/authorize/decision":
            ns = dict(scope["headers"]).get(ISOLATION_HEADER.lower().encode(), b"").decode()
            self.by_namespace[ns] = self.by_namespace.get(ns, 0) + 1
        await super().__call__(scope, receive, send)


def test_a_diagnosis_namespace_holds_one_app_s_install(tmp_path, scenario):
    """A refused cell with a precondition is diagnosed with the probe app and confirmed with your app: each
    app's probes run where only that app's install of the precondition was made, so what a probe sees never
    depends on how far another diagnosis of the same scope set has got. Your app's is the cell's own
    precondition (the cells only look), not a second install of the same thing."""
    app = create_app(scenario, SimOptions(test_support=True))
    decisions = DecisionsByNamespace(app)
    (cell,) = pick("restricted@marketing-pro/crm-after-super-admin")
    (result,), _, _ = run_cells(scenario, [cell], tmp_path, app=app)
    assert result.diagnosis is not None and result.diagnosis.probe_app, result.diagnosis
    # the precondition (your app, which the cell and your app's probes look at) and the probe app's install
    assert len(decisions.by_namespace) == 2 and decisions.posts == 2, decisions.by_namespace
    assert all(n == 1 for n in decisions.by_namespace.values()), decisions.by_namespace


class AuthorizeRequests(ConsentDecisions):
    """The scope sets each app's client asked the authorize page for (probes, cells and installs alike)."""

    def __init__(self, app: SimulatorApp) -> None:
        super().__init__(app)
        self.asked: list[tuple[str, frozenset[str]]] = []

    async def __call__(self, scope, receive, send):
        path = scope["path"] if scope["type"] == "http" else ""
        if path.startswith("/oauth/") and path.endswith("/authorize"):  # /oauth/authorize, /oauth/{hub}/authorize
            from urllib.parse import parse_qs

            query = parse_qs(scope["query_string"].decode())
            self.asked.append((query["client_id"][0], frozenset(query["scope"][0].split())))
        await super().__call__(scope, receive, send)


def test_a_diagnosis_proves_what_it_names_with_the_fewest_probes(tmp_path, scenario):
    """Two scopes found blocking one at a time are each proven by their own probe: the pair is never probed
    as a whole. A user who can't install at all, in an account that lacks a scope's product: your app, without
    that scope, still refuses the user but no longer for the account, which agrees with the probe app, so no
    search is made again with your app."""
    app = create_app(scenario, SimOptions(test_support=True))
    asked = AuthorizeRequests(app)
    cells = pick("sales-admin@marketing-pro/seed-app", "restricted@marketing-pro/custom-objects")
    (two, account), _, _ = run_cells(scenario, cells, tmp_path, app=app)
    probe = MATRIX.spec.probe_app
    assert probe is not None
    for cell, result in zip(cells, (two, account), strict=True):
        truth = decide(scenario, cell, request(MATRIX, cell, probe))
        assert result.diagnosis is not None and set(result.diagnosis.blocking_scopes) == set(truth.blocking_scopes)
        assert result.diagnosis.probe_app == probe.id, result.diagnosis.summary  # the probe app's, confirmed
    by_probe = [scopes for client, scopes in asked.asked if client == probe.client_id]
    assert frozenset({"oauth", "forms", "content"}) not in by_probe  # each was probed alone instead
    assert {frozenset({"oauth", s}) for s in ("forms", "content", "contacts", "files")} <= set(by_probe)
    assert frozenset({"oauth", "contacts", "files"}) in by_probe  # without them it installs: the fix, proven
    assert two.diagnosis is not None and two.diagnosis.probes == 6  # the base, four alone, the rest
    assert account.diagnosis is not None and account.diagnosis.attribution == "account"
    assert "also lacks an installer right" in account.diagnosis.summary
    assert "but your app" not in account.diagnosis.summary
    crm_sync = MATRIX.app_of(cells[1].scope_set).client_id
    # Your app's one check: its URL without the named scope; its full URL is the cell's own, asked once.
    assert [s for c, s in asked.asked if c == crm_sync].count(frozenset(cells[1].scope_set.scopes)) == 1


def test_an_account_screen_is_searched_from_the_scopes_alone(tmp_path, scenario):
    """A refusal on the account's screen: each scope alone first. One installs, which proves the user can
    install the app, so the base probe (there to tell an installer who can't) is never sent. The scope your
    app requires, alone, is a valid URL of your app: it is asked of your app, never of the probe app too."""
    app = create_app(scenario, SimOptions(test_support=True))
    asked = AuthorizeRequests(app)
    (cell,) = pick("super-admin@marketing-pro/custom-objects")
    (result,), _, _ = run_cells(scenario, [cell], tmp_path, app=app)
    probe = MATRIX.spec.probe_app
    assert probe is not None and result.outcome is Outcome.DENIED_ACCOUNT
    truth = decide(scenario, cell, request(MATRIX, cell, probe))
    d = result.diagnosis
    assert d is not None and d.blocking_scopes == tuple(truth.blocking_scopes) == ("crm.objects.custom.read",)
    assert d.attribution == "account" and d.method == "one-at-a-time" and d.search_probes == 2
    by_probe = [scopes for client, scopes in asked.asked if client == probe.client_id]
    assert by_probe == [frozenset({"crm.objects.custom.read", "oauth"})]
    crm_sync = MATRIX.app_of(cell.scope_set).client_id
    by_app = [scopes for client, scopes in asked.asked if client == crm_sync]
    assert sorted(map(sorted, by_app)) == [  # the cell's own request, then the probe without the culprit
        ["crm.objects.contacts.read", "crm.objects.custom.read", "oauth"],
        ["crm.objects.contacts.read", "oauth"],
    ]


@pytest.mark.parametrize("approve", [False, True], ids=["look", "approve"])
def test_a_precondition_cells_diagnosis_walks_first_and_shares_your_apps_install(tmp_path, scenario, approve):
    """The longest chain of a run: a refused cell whose scope set needs another user's install first. Its
    diagnosis's walks take the chain's slot priority. Your app's install (which the check with your app
    needs) is the cell's own precondition when the cells only look; when they install themselves (--approve),
    the diagnosis makes it once, while the probe app searches, not after."""
    from scopematrix import slots as slot_module

    (cell,) = pick("restricted@marketing-pro/crm-after-super-admin")
    app = create_app(scenario, SimOptions(test_support=True))
    asked = AuthorizeRequests(app)
    priorities: list[int] = []
    original = slot_module.Slots.slot

    def recording(self, priority=slot_module.CELL, user=""):
        priorities.append(priority)
        return original(self, priority, user)

    slot_module.Slots.slot = recording  # type: ignore[method-assign]
    try:
        (result,), _, _ = run_cells(scenario, [cell], tmp_path, approve=approve, app=app)
    finally:
        slot_module.Slots.slot = original  # type: ignore[method-assign]
    d = result.diagnosis
    assert result.outcome is Outcome.DENIED_PERMISSIONS and d is not None and d.probes >= 3, d
    assert priorities[0] == slot_module.CELL_CHAIN_FIRST
    assert set(priorities[1:]) == {slot_module.PROBE_CHAIN}  # every walk of its diagnosis
    probe = MATRIX.spec.probe_app
    assert probe is not None
    yours, full = MATRIX.app_of(cell.scope_set).client_id, frozenset(cell.scope_set.scopes)
    installs_of_yours = [i for i, (c, s) in enumerate(asked.asked) if c == yours and s == full]
    probes = [i for i, (c, s) in enumerate(asked.asked) if c == probe.client_id and s != full]
    assert probes and any(c == yours and s != full for c, s in asked.asked)  # the check with your app was made
    if not approve:
        assert len(installs_of_yours) == 2, asked.asked  # the precondition and the cell: nothing made again
    else:
        # the cell's own precondition, the cell, then the diagnosis's install (shared): before any probe
        assert len(installs_of_yours) == 3 and installs_of_yours[2] < probes[0], asked.asked


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_cells_own_answer_is_never_probed_again(tmp_path, scenario, concurrency):
    """restricted's crm-read remedy, "after the super admin installs first", is the very request of restricted's
    crm-after-super-admin cell, in the same install's namespace: the cell's answer serves, no probe repeats it.
    One slot: the cell has answered before the remedy asks; four: the remedy may ask while the cell looks,
    and waits for its answer."""
    app = create_app(scenario, SimOptions(test_support=True))
    asked = AuthorizeRequests(app)
    after, read = pick("restricted@marketing-pro/crm-after-super-admin", "restricted@marketing-pro/crm-read")
    (after_result, read_result), _, _ = run_cells(scenario, [after, read], tmp_path, app=app, concurrency=concurrency)
    assert read_result.diagnosis is not None
    fix = next(r for r in read_result.diagnosis.remedies if r.kind == "super_admin_first")
    assert fix.outcome is after_result.outcome is Outcome.DENIED_PERMISSIONS, fix
    crm_sync, full = MATRIX.app_of(read.scope_set).client_id, frozenset(read.scope_set.scopes)
    # the super admin's install, and each cell's own walk: nothing else asks for the full request
    assert [s for c, s in asked.asked if c == crm_sync].count(full) == 3, asked.asked


def record_contexts(monkeypatch) -> list[bool]:
    """Every browser context the run opens, in order: whether it came signed in (never the state itself, a
    secret)."""
    from scopematrix.flow.browsing import Contexts

    opened: list[bool] = []
    original = Contexts.new

    async def counting(self, state, video_dir=None):
        opened.append(state is not None)
        return await original(self, state, video_dir)

    monkeypatch.setattr(Contexts, "new", counting)
    return opened


def test_the_page_that_logged_in_is_the_users_first_page(tmp_path, scenario, monkeypatch):
    """A login's page is kept for the user's walks: one user's two cells, one at a time, open no context
    besides the login's; and the login's count of navigations is not the walks'."""
    opened = record_contexts(monkeypatch)
    cells = pick("super-admin@marketing-pro/crm-read", "super-admin@marketing-pro/seed-app")
    results, stats, _ = run_cells(scenario, cells, tmp_path, diagnose=False, concurrency=1)
    assert [r.outcome for r in results] == [Outcome.GRANTED, Outcome.GRANTED]
    assert stats["logins"] == 1 and opened == [False], opened  # the login's context, and no other
    assert all(r.timings["navigations"] == 1.0 for r in results)
    assert sum(r.timings.get("login_navigations", 0.0) for r in results) == 5.0  # email, 303, password, 303, home


def test_spare_pages_made_while_logging_in_serve_the_first_walks(tmp_path, scenario, monkeypatch):
    """One user's four cells in four slots: the login's page and three spare pages, made while the login ran,
    serve the four walks. No context is opened signed in, and the spares carry the login's session (one login:
    a spare without it would have met the login screen and logged in again)."""
    import asyncio

    from scopematrix.flow.sessions import PagePool
    from scopematrix.flow.signin import SignIn

    opened = record_contexts(monkeypatch)
    original_once = SignIn.once
    pools: list[PagePool] = []
    original_stock = PagePool.stock

    def stocking(self, count):
        pools.append(self)
        original_stock(self, count)

    async def after_the_spares(self, user_id, navigations):
        for _ in range(6000):  # the login ends once the spares are made, however busy the machine (at most 60 s)
            if pools and pools[0].spares >= 3:
                break
            await asyncio.sleep(0.01)
        return await original_once(self, user_id, navigations)

    monkeypatch.setattr(PagePool, "stock", stocking)
    monkeypatch.setattr(SignIn, "once", after_the_spares)
    cells = pick(
        *(f"super-admin@marketing-pro/{s}" for s in ("crm-read", "seed-app", "deals-owners", "custom-objects"))
    )
    results, stats, _ = run_cells(scenario, cells, tmp_path, diagnose=False, concurrency=4)
    assert [r.outcome for r in results] == [expected_outcome(scenario, c, MATRIX) for c in cells]
    assert stats["logins"] == 1
    assert opened == [False] * 4, opened  # the login's context and three spares, and no other
    assert pools[0].spares == 0  # every spare went to a walk


def test_no_spare_page_is_made_when_every_walk_needs_a_context_of_its_own(tmp_path, scenario, monkeypatch):
    """Traced cells each get a fresh context, and without diagnosis there is no probe to take a spare: none
    is made (each would cost a context and a renderer for nothing)."""
    opened = record_contexts(monkeypatch)
    cells = pick(*(f"super-admin@marketing-pro/{s}" for s in ("crm-read", "seed-app", "deals-owners")))
    results, stats, _ = run_cells(scenario, cells, tmp_path, diagnose=False, concurrency=3, tracing="on")
    assert [r.outcome for r in results] == [expected_outcome(scenario, c, MATRIX) for c in cells]
    assert stats["logins"] == 1
    assert opened == [False, True, True, True], opened  # the login's context, then one signed-in per cell


def test_a_state_that_keeps_storage_never_takes_a_spare(tmp_path, scenario):
    """A spare is a new context plus the login's cookies: only a state that is its cookies alone may take one
    (a state with local storage gets a context of its own, made from the whole state)."""
    import asyncio

    from scopematrix.flow.sessions import cookies_only

    stored = {
        "cookies": [],
        "origins": [{"origin": "https://app.hubspot.com", "localStorage": [{"name": "a", "value": "b"}]}],
    }
    assert not cookies_only(stored)
    assert cookies_only({"cookies": [], "origins": []}) and cookies_only({"cookies": []})
    assert cookies_only({"cookies": [], "origins": [{"origin": "https://app.hubspot.com", "localStorage": []}]})
    with started_engine(tmp_path, scenario) as engine:
        assert engine.harness is not None
        pool = engine.harness.sessions.pool

        async def scenario_() -> list[int]:
            pool.stock(1)
            for _ in range(6000):  # (made in the background: at most 60 s, however busy the machine)
                if pool.spares >= 1:
                    break
                await asyncio.sleep(0.01)
            left = [pool.spares]
            await pool.lease("ann", stored, fresh=False)
            left.append(pool.spares)  # a context of its own
            await pool.lease("bob", {"cookies": [], "origins": []}, fresh=True)
            left.append(pool.spares)  # fresh (a traced walk): never a spare
            await pool.lease("bob", {"cookies": [], "origins": []}, fresh=False)
            left.append(pool.spares)
            return left

        left = asyncio.run_coroutine_threadsafe(scenario_(), engine._loop).result(60)
    assert left == [1, 1, 1, 0]


def test_the_page_pool_ranks_a_user_by_a_page_to_spare_then_by_pages_open(tmp_path, scenario):
    """What the slots' preference reads: a user with an idle page ranks first (reused, not opened), then the
    user with the fewest pages open; a page closed or dropped no longer counts."""
    import asyncio

    with started_engine(tmp_path, scenario) as engine:
        assert engine.harness is not None
        pool = engine.harness.sessions.pool

        async def scenario_() -> list[tuple[int, int]]:
            ranks = [pool.rank("ann")]
            first = await pool.lease("ann", {}, fresh=False)
            second = await pool.lease("ann", {}, fresh=False)
            ranks.append(pool.rank("ann"))  # two pages open, none idle
            await pool.give_back("ann", *first, reusable=True)
            ranks.append(pool.rank("ann"))  # one to spare
            again = await pool.lease("ann", {}, fresh=False)
            assert again == first  # the idle page, not a new one
            await pool.give_back("ann", *second, reusable=False)
            ranks.append(pool.rank("ann"))  # closed: one page open
            await pool.give_back("ann", *again, reusable=True)
            await pool.drop("ann")
            ranks.append(pool.rank("ann"))
            return ranks

        ranks = asyncio.run_coroutine_threadsafe(scenario_(), engine._loop).result(60)
    assert ranks == [(1, 0), (1, 2), (0, 2), (1, 1), (1, 0)]


def test_a_failed_reset_at_close_still_closes_the_browser(tmp_path, scenario):
    """The browser closes while the simulator forgets the run's installs: trouble in one never leaves the
    other undone."""
    import asyncio

    with started_engine(tmp_path, scenario) as engine:
        harness = engine.harness
        assert harness is not None
        browser = asyncio.run_coroutine_threadsafe(harness.browser(), engine._loop).result(60)

        async def unreachable() -> None:
            raise RuntimeError("the simulator went away")

        harness.namespaces.close = unreachable  # type: ignore[method-assign]
        engine.stop()
        assert not browser.is_connected()
