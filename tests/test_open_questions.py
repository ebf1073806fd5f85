"""No shared guesses: the default matrix, with diagnosis, under every reading of what the brief leaves open.

Each open question is a simulator switch (README "Open questions"). A pairwise covering set of their
settings runs in full, plus one seeded random combination per run (its seed is printed: replay it with
SCOPEMATRIX_SWITCH_SEED). Outcomes, blocking sets and attributions are compared with the rules as the
oracle under the same switches, never with one rendering's results.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from allpairspy import AllPairs

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import Matrix, load_matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions
from tests.oracle import diagnosis_errors, expected_outcome, truth

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()

# Every switch and its settings; `pinned` (the picker shows only without a pinned Hub ID) and `approve` (click
# through consent, exchange the code, read the token's scopes) are the harness's.
SWITCHES: dict[str, list[Any]] = {
    "oauth": ["implied", "required"],
    "approvals": ["per_app", "per_account"],
    "super_admin_bypasses_tier": [False, True],
    "denial_page": ["2026", "legacy"],
    "consent_button": ["Connect app", "Grant access"],
    "markup": ["classic", "plain", "nested"],
    "picker": ["links", "rows", "dropdown"],
    "consent_list": ["descriptions", "ids", "both", "glued"],
    "error_texts": ["newer", "older"],
    "render": ["server", "script"],
    "cookie_banner": ["inline", "late_modal"],
    "totp_required": [True, False],
    "pinned": [True, False],
    "approve": [False, True],
}
PAIRWISE = [dict(zip(SWITCHES, row, strict=True)) for row in AllPairs(list(SWITCHES.values()))]
SEED = int(os.environ.get("SCOPEMATRIX_SWITCH_SEED") or random.SystemRandom().randrange(1, 10**6))


def variant(**update: Any) -> Matrix:
    """The default matrix with some of its keys changed."""
    return Matrix(MATRIX.spec.model_copy(update=update), MATRIX.source, MATRIX.baseline, MATRIX.baseline_path)


def scenario_with(switches: dict[str, Any], folder: Path, **account_changes: dict[str, Any]) -> Scenario:
    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    harness = ("pinned", "approve")
    doc["switches"] = {**doc.get("switches", {}), **{k: v for k, v in switches.items() if k not in harness}}
    for account in doc["accounts"]:
        account.update(account_changes.get(account["id"], {}))
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return load_scenario(path)


def run_matrix(scenario: Scenario, matrix: Matrix, **flow: Any) -> dict[str, CellResult]:
    choice = find_browser(headless=True)
    assert choice is not None
    cells = matrix.cells()
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        engine = Engine(
            target=sim_target(matrix, scenario, server.url, matrix.users_needed(cells)), matrix=matrix,
            run_dir=Path(tempfile.mkdtemp(prefix="scopematrix-switches-")), run_id="switches",
            flow=FlowOptions(**flow), browser=BrowserOptions(choice.executable_path), concurrency=4,
            diagnose=True, sink=None,
        )  # fmt: skip
        engine.start()
        try:
            return {r.cell_id: r for r in engine.run_all(cells)}
        finally:
            engine.stop()


def disagreements(
    switches: dict[str, Any], folder: Path, **matrix_changes: Any
) -> tuple[list[str], dict[str, CellResult]]:
    """Every cell whose outcome or diagnosis differs from the oracle's under these switches."""
    scenario = scenario_with(switches, folder)
    matrix = variant(pinned=switches.get("pinned", True), **matrix_changes)
    results = run_matrix(scenario, matrix, pinned=matrix.spec.pinned, approve=switches.get("approve", False))
    base = MATRIX.spec.probe_app.scopes.required if MATRIX.spec.probe_app and MATRIX.spec.probe_app.scopes else []
    wrong = []
    for cell in matrix.cells():
        got, want = results[cell.id], expected_outcome(scenario, cell, matrix)
        if got.outcome is not want:
            wrong.append(f"{cell.id}: {got.outcome.value}, oracle {want.value} ({got.message[:80]})")
        elif want.blocked:
            wrong += [f"{cell.id}: {e}" for e in diagnosis_errors(got.diagnosis, truth(scenario, cell, matrix, base))]
    return wrong, results


@pytest.mark.parametrize("switches", PAIRWISE, ids=[f"pairwise-{i}" for i in range(len(PAIRWISE))])
def test_outcomes_and_diagnoses_equal_the_oracle(switches, tmp_path):
    wrong, results = disagreements(switches, tmp_path)
    assert not wrong, (switches, wrong[:5], len(wrong))
    assert sum(1 for r in results.values() if r.diagnosis is not None) >= 30


def test_one_seeded_random_combination(tmp_path):
    rng = random.Random(SEED)
    switches = {name: rng.choice(values) for name, values in SWITCHES.items()}
    print(f"switch seed {SEED} (replay: SCOPEMATRIX_SWITCH_SEED={SEED}): {switches}")  # noqa: T201
    wrong, _ = disagreements(switches, tmp_path)
    assert not wrong, (SEED, switches, wrong[:5])


def test_the_pairwise_set_covers_every_pair_of_settings():
    names = list(SWITCHES)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            seen = {(row[a], row[b]) for row in PAIRWISE}
            assert len(seen) == len(SWITCHES[a]) * len(SWITCHES[b]), (a, b)


@pytest.mark.parametrize("oauth", ["implied", "required"])
def test_without_a_probe_app_a_diagnosis_is_exact_or_honestly_unsplit(oauth, tmp_path):
    """Your app's own valid URLs only: a required scope can't be left out, so a blocker among them is named
    as "within {...}", never guessed; every probe carries every declared required scope, oauth included."""
    wrong, results = disagreements({"oauth": oauth}, tmp_path, probe_app=None)
    assert not wrong, wrong[:5]
    methods = {r.diagnosis.method for r in results.values() if r.diagnosis is not None}
    searched = methods & {"binary-splitting", "one-at-a-time"}  # the search by group testing, or one scope at a time
    assert "inconclusive" not in methods and searched and "app-settings" in methods, methods
    seed = results["sales-admin@marketing-pro/seed-app"].diagnosis
    assert seed is not None and set(seed.candidates) == {"oauth", "forms", "content"}


# Your app (CRM Sync) was installed in the enterprise account before the run, with these scopes approved.
INSTALLED = {
    "9b2e4c61-3f0a-4d8e-b7c5-1a6f0e2d9c33": ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read"]
}


@pytest.mark.parametrize("approvals", ["per_app", "per_account"])
def test_a_probe_app_finding_that_your_app_contradicts_is_never_named(approvals, tmp_path):
    """Approvals per app: the probe app has none in the account, so for a user without Marketplace Access it
    can install nothing, while your app re-installs its approved scopes. Its answer ("installer-level") is
    not repeated as fact: your app's own probes name the scope that blocks."""
    scenario = scenario_with({"approvals": approvals}, tmp_path, enterprise={"installed": INSTALLED})
    cells = [c for c in MATRIX.cells() if c.account.id == "enterprise" and c.user.id == "admin-no-marketplace"]
    matrix = variant(users=[cells[0].user, *(u for u in MATRIX.spec.users if u.super_admin)])
    results = run_matrix(scenario, matrix)
    base = ["oauth"]
    deals = "admin-no-marketplace@enterprise/deals-owners"
    for cell in matrix.cells():
        if cell.user.id != "admin-no-marketplace" or cell.account.id != "enterprise":
            continue
        want = expected_outcome(scenario, cell, matrix)
        assert results[cell.id].outcome is want, cell.id
        if want.blocked:
            assert not diagnosis_errors(results[cell.id].diagnosis, truth(scenario, cell, matrix, base)), cell.id
    d = results[deals].diagnosis
    assert d is not None and d.blocking_scopes == ("crm.objects.deals.read",), d
    if approvals == "per_app":
        assert "the probe app could install nothing" in d.summary  # said, and not repeated as fact
    assert results["admin-no-marketplace@enterprise/crm-read"].outcome is Outcome.GRANTED  # approved before


@pytest.mark.parametrize("approvals", ["per_app", "per_account"])
def test_an_account_only_finding_is_checked_with_your_app_under_both_approval_readings(approvals, tmp_path):
    """A user without Marketplace Access, in an account without custom objects: the probe app (never approved
    there) can install nothing, and names the scope that brings the account screen back. Your app was installed
    before, so under per-app approvals it re-installs without that scope: then the probe app's "also lacks an
    installer right" must not be said: the request without the scope is a valid URL of your app, so it is asked
    of your app, which re-installs, and nothing needs taking back. Under per-account approvals the probe app can
    install what your app could, and the two agree. Both equal the oracle."""
    scenario = scenario_with({"approvals": approvals}, tmp_path, **{"marketing-pro": {"installed": INSTALLED}})
    cell = next(c for c in MATRIX.cells() if c.id == "admin-no-marketplace@marketing-pro/custom-objects")
    matrix = variant(users=[cell.user, *(u for u in MATRIX.spec.users if u.super_admin)])
    result = run_matrix(scenario, matrix)[cell.id]
    assert result.outcome is expected_outcome(scenario, cell, matrix) is Outcome.DENIED_ACCOUNT
    d = result.diagnosis
    assert not diagnosis_errors(d, truth(scenario, cell, matrix, ["oauth"])), d
    assert d is not None and d.blocking_scopes == ("crm.objects.custom.read",) and d.attribution == "account"
    assert "also lacks an installer right" not in d.summary, d.summary  # your app's answer, not the probe app's
    assert "but your app" not in d.summary, d.summary  # your app was asked first: no probe-app answer to take back
