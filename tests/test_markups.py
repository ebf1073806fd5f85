"""Metamorphic test: the default matrix rendered in every simulator markup gives identical outcomes and
diagnoses. A page object that needs one renderer's tags, nesting or test ids fails here."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import load_matrix
from scopematrix.model import CellResult
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()
Markup = Literal["classic", "plain", "nested"]
MARKUPS: tuple[Markup, ...] = ("classic", "plain", "nested")


def verdict(r: CellResult) -> tuple[object, ...]:
    """What a run concludes about a cell, leaving out timings, paths and probe counts (those vary)."""
    d = r.diagnosis
    diagnosis = None
    if d is not None:
        remedies = tuple((x.kind, x.verified, x.outcome) for x in d.remedies)
        diagnosis = (d.blocking_scopes, d.attribution, d.method, d.candidates, d.summary, d.findings, remedies,
                     d.missing_permissions)  # fmt: skip
    message = r.message.replace("’", "'")  # the plain markup uses straight apostrophes
    return (r.outcome, message, r.missing_permissions, r.offered_scopes, diagnosis)


def run_matrix(scenario: Scenario, markup: Markup) -> dict[str, CellResult]:
    drawn = scenario
    drawn.markup = markup
    choice = find_browser(headless=True)
    assert choice is not None
    cells = MATRIX.cells()
    with SimServer(create_app(drawn, SimOptions(test_support=True))) as server:
        engine = Engine(
            target=sim_target(MATRIX, drawn, server.url, MATRIX.users_needed(cells)), matrix=MATRIX,
            run_dir=Path(tempfile.mkdtemp(prefix=f"scopematrix-{markup}-")), run_id=markup, flow=FlowOptions(),
            browser=BrowserOptions(choice.executable_path), concurrency=4, diagnose=True, sink=None,
        )  # fmt: skip
        engine.start()
        try:
            return {r.cell_id: r for r in engine.run_all(cells)}
        finally:
            engine.stop()


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, CellResult]]:
    from scopematrix.simulator.scenario import load_scenario

    out: dict[str, dict[str, CellResult]] = {}
    for markup in MARKUPS:
        scenario = load_scenario()  # a fresh copy each: the markup is part of the scenario
        out[markup] = run_matrix(scenario, markup)
    return out


def test_every_markup_gives_the_baseline_outcomes(runs):
    for markup, results in runs.items():
        wrong = {cid: r.outcome.value for cid, r in results.items() if not r.matches_expectation}
        assert not wrong, (markup, wrong)
        assert len(results) == len(MATRIX.cells())


def test_every_markup_gives_identical_diagnoses_and_evidence(runs):
    classic = {cid: verdict(r) for cid, r in runs["classic"].items()}
    for markup in MARKUPS[1:]:
        other = {cid: verdict(r) for cid, r in runs[markup].items()}
        differ = [cid for cid in classic if classic[cid] != other[cid]]
        assert not differ, (markup, [(cid, classic[cid], other[cid]) for cid in differ[:3]])
    assert sum(1 for r in runs["classic"].values() if r.diagnosis is not None) >= 40
    # The lists were read in every markup: missing permissions and the consent scope list.
    assert any(r.missing_permissions for r in runs["nested"].values())
    assert any(r.offered_scopes for r in runs["plain"].values())
