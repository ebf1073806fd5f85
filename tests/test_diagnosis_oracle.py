"""Diagnosis, for every denied cell of the default matrix, checked against the rules as the oracle."""

from __future__ import annotations

import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import Cell, ScopeSetEntry, load_matrix
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions
from tests.oracle import expected_outcome

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()


def _blocked(scenario: Scenario, cell: Cell, scopes: list[str], client_id: str) -> bool:
    """What the rules say about a probe: the cell's user and account, only `scopes` requested, after the
    cell's precondition (if any) with its full scope set, as the diagnosis replays it."""
    probe_set = ScopeSetEntry(id="probe", scopes=scopes or ["oauth"], optional=cell.scope_set.optional,
                              installed_by=cell.scope_set.installed_by)  # fmt: skip
    probe = Cell(cell.user, cell.account, probe_set)
    return expected_outcome(scenario, probe, client_id, MATRIX.app.redirect_uri, cell.scope_set).blocked


def test_every_denied_cell_is_diagnosed_as_the_rules_say(scenario):
    denied = [c for c in MATRIX.cells() if (e := MATRIX.expectation(c.id)) and e.outcome.blocked]
    assert len(denied) >= 30
    choice = find_browser()
    assert choice is not None
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        target = sim_target(MATRIX, scenario, server.url, MATRIX.users_needed(denied))
        engine = Engine(
            target=target,
            matrix=MATRIX,
            run_dir=server_dir(),
            run_id="oracle",
            flow=FlowOptions(),
            browser=BrowserOptions(choice.executable_path),
            concurrency=4,
            diagnose=True,
            sink=None,
        )
        engine.start()
        try:
            results = {r.cell_id: r for r in engine.run_all(denied)}
        finally:
            engine.stop()
    client_id = target.client_id
    kinds = set()
    for cell in denied:
        d = results[cell.id].diagnosis
        assert d is not None, cell.id
        requested = [s for s in cell.scope_set.scopes if s != "oauth"]
        if _blocked(scenario, cell, [], client_id):
            assert d.attribution == "installer" and d.blocking_scopes == (), cell.id
        else:
            # Under the rules a scope blocks on its own or not at all: the culprits are exactly those.
            truth = {s for s in requested if _blocked(scenario, cell, [s], client_id)}
            assert set(d.blocking_scopes) == truth, cell.id
            rest = [s for s in requested if s not in truth]
            assert not _blocked(scenario, cell, rest, client_id), cell.id  # removing them reaches consent
            sa = next(u for u in MATRIX.spec.users if u.super_admin)
            for f in d.findings:
                su = Cell(sa, cell.account, cell.scope_set)
                expected = "account" if _blocked(scenario, su, [f.scope], client_id) else "user"
                assert f.level == expected, (cell.id, f)
        kinds.add(d.attribution)
    assert {"account", "user", "installer"} <= kinds
    assert any(len(results[c.id].diagnosis.blocking_scopes) >= 2 for c in denied)  # type: ignore[union-attr]


def server_dir():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="scopematrix-oracle-"))
