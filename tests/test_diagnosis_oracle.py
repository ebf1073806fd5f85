"""Diagnosis, for every denied cell of the default matrix, checked against the rules as the oracle.

The default apps have required scopes, as real apps do. With the probe app every blocking set must be
exact; without it a diagnosis names exactly the blocking scopes or says it cannot split them and names
the candidates, and never names a scope the oracle doesn't block.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import Cell, Matrix, ScopeSetEntry, load_matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions
from tests.oracle import expected_outcome

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()


def without_probe_app(matrix: Matrix) -> Matrix:
    spec = matrix.spec.model_copy(update={"probe_app": None})
    return Matrix(spec, matrix.source, matrix.baseline, matrix.baseline_path)


def probe(scenario: Scenario, cell: Cell, scopes: list[str]) -> Outcome:
    """The rules' answer for a probe: the cell's user and account, only `scopes`, sent through the probe
    app (any subset is valid there), after the cell's precondition as the diagnosis replays it."""
    probe_set = ScopeSetEntry(id="probe", scopes=scopes or ["oauth"], installed_by=cell.scope_set.installed_by)
    replayed = ScopeSetEntry(id="pre", scopes=[s for s in cell.scope_set.scopes if s != "oauth"] or ["oauth"])
    return expected_outcome(scenario, Cell(cell.user, cell.account, probe_set), MATRIX, replayed,
                            app=MATRIX.spec.probe_app)  # fmt: skip


def blocked(scenario: Scenario, cell: Cell, scopes: list[str]) -> bool:
    return probe(scenario, cell, scopes).blocked


def truth(scenario: Scenario, cell: Cell) -> set[str] | None:
    """The scopes that block on their own; None when even the base scope is blocked (installer-level).

    With two blockers (the cell shows the account screen, the base probe the user's), the truth is the
    scopes that bring the account screen back."""
    requested = [s for s in cell.scope_set.scopes if s != "oauth"]
    base = probe(scenario, cell, [])
    expectation = MATRIX.expectation(cell.id)
    if base.blocked:
        if expectation is None or expectation.outcome is not Outcome.DENIED_ACCOUNT or base is Outcome.DENIED_ACCOUNT:
            return None
        return {s for s in requested if probe(scenario, cell, [s]) is Outcome.DENIED_ACCOUNT}
    return {s for s in requested if blocked(scenario, cell, [s])}


def diagnose_all(scenario: Scenario, matrix: Matrix) -> tuple[list[Cell], dict[str, CellResult]]:
    denied = [c for c in matrix.cells() if (e := matrix.expectation(c.id)) and e.outcome.blocked]
    choice = find_browser(headless=True)
    assert choice is not None
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(matrix, scenario, server.url, matrix.users_needed(denied))
        engine = Engine(
            target=target, matrix=matrix, run_dir=Path(tempfile.mkdtemp(prefix="scopematrix-oracle-")),
            run_id="oracle", flow=FlowOptions(), browser=BrowserOptions(choice.executable_path), concurrency=4,
            diagnose=True, sink=None,
        )  # fmt: skip
        engine.start()
        try:
            results = {r.cell_id: r for r in engine.run_all(denied)}
        finally:
            engine.stop()
    return denied, results


def test_with_the_probe_app_every_blocking_set_is_exact(scenario):
    denied, results = diagnose_all(scenario, MATRIX)
    assert len(denied) >= 30
    kinds = set()
    for cell in denied:
        d = results[cell.id].diagnosis
        assert d is not None, cell.id
        assert d.probe_app == "probe", cell.id
        want = truth(scenario, cell)
        if want is None:
            assert d.attribution == "installer" and d.blocking_scopes == (), (cell.id, d.summary)
        else:
            assert set(d.blocking_scopes) == want, (cell.id, d.summary)
            sa = next(u for u in MATRIX.spec.users if u.super_admin)
            for f in d.findings:
                expected = "account" if blocked(scenario, Cell(sa, cell.account, cell.scope_set), [f.scope]) else "user"
                assert f.level == expected, (cell.id, f)
        kinds.add(d.attribution)
    assert {"account", "user", "installer"} <= kinds
    assert any(len(results[c.id].diagnosis.blocking_scopes) >= 2 for c in denied)  # type: ignore[union-attr]


def test_without_a_probe_app_a_diagnosis_is_exact_or_says_it_cannot_split(scenario):
    matrix = without_probe_app(MATRIX)
    denied, results = diagnose_all(scenario, matrix)
    outcomes = {"exact": 0, "cannot split": 0}
    for cell in denied:
        d = results[cell.id].diagnosis
        assert d is not None, cell.id
        want = truth(scenario, cell)
        assert d.method != "inconclusive", (cell.id, d.summary)  # the declared settings make every probe valid
        if d.blocking_scopes:
            assert want is not None and set(d.blocking_scopes) == want, (cell.id, d.summary)
            outcomes["exact"] += 1
        elif d.method == "app-settings":
            required = set(matrix.app_of(cell.scope_set).scopes.required)  # type: ignore[union-attr]
            assert set(d.candidates) <= required and d.candidates, (cell.id, d.summary)
            # The blocker really is among them (or it is the installer, which the summary names too).
            assert want is None or want & set(d.candidates), (cell.id, d.summary)
            assert "probe_app" in d.summary
            outcomes["cannot split"] += 1
        else:
            assert want is None and d.attribution == "installer", (cell.id, d.summary)
    assert outcomes["exact"] and outcomes["cannot split"], outcomes
    seed = results["sales-admin@marketing-pro/seed-app"].diagnosis
    assert seed is not None and set(seed.candidates) == {"forms", "content"}
    assert seed.summary.startswith("Blocked within {forms, content}")
