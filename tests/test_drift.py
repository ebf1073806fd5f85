"""UI drift fails fast and loud: a known HubSpot screen whose control our page object can't use ends the cell
`unrecognized` (its HTML and screenshot kept) within the grace, not after a click timeout, and the run
exits 4. Also: the picker with selectable rows and a confirm button is used as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import DEFAULT_MATRIX, load_matrix
from scopematrix.model import Outcome, Screen
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import DEFAULT_SCENARIO, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import Fault, SimOptions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
CELL = "admin-marketplace@enterprise/crm-read"


def files(tmp_path: Path) -> tuple[Path, Path]:
    """An unpinned matrix (so the picker shows) and a scenario whose picker is rows plus a confirm button."""
    matrix = yaml.safe_load(DEFAULT_MATRIX.read_text())
    matrix["pinned"] = False
    matrix["baseline"] = str(DEFAULT_MATRIX.parent / matrix["baseline"])
    scenario = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    scenario["switches"]["picker"] = "rows"
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(matrix))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario, allow_unicode=True))
    return tmp_path / "matrix.yaml", tmp_path / "scenario.yaml"


@pytest.mark.parametrize("stuck", [False, True], ids=["rows-then-confirm", "confirm-never-enables"])
def test_a_picker_of_rows_is_used_and_a_control_that_never_enables_is_unrecognized(tmp_path, stuck):
    matrix_path, scenario_path = files(tmp_path)
    matrix, scenario = load_matrix(matrix_path), load_scenario(scenario_path)
    (cell,) = [c for c in matrix.cells() if c.id == CELL]
    faults = [Fault("/oauth/authorize", "stuck-controls")] if stuck else []
    choice = find_browser(headless=True)
    assert choice is not None
    with SimServer(create_app(scenario, SimOptions(test_support=True, faults=faults))) as server:
        engine = Engine(
            target=sim_target(matrix, scenario, server.url, {cell.user.id}), matrix=matrix, run_dir=tmp_path / "run",
            run_id="drift", flow=FlowOptions(pinned=False, grace_s=1.5, timeout_ms=120_000),
            browser=BrowserOptions(choice.executable_path), concurrency=1, diagnose=False, sink=None,
        ).start()  # fmt: skip
        try:
            result = engine.result(cell)
        finally:
            engine.stop()
    screens = [c.screen for c in result.screenshots]
    assert screens[0] is Screen.ACCOUNT_PICKER, screens
    if not stuck:
        assert result.outcome is Outcome.GRANTED and screens[-1] is Screen.CONSENT, result
        return
    assert result.outcome is Outcome.UNRECOGNIZED, result
    assert "account picker's confirm button stays disabled" in result.message
    assert result.html_path and (tmp_path / "run" / result.html_path).is_file()
    assert result.error == ""  # not an outage
    # It ended on its own, without waiting out the 120 s action timeout, and once: drift is not retried.
    assert result.duration_s < 60 and result.attempts == 1, result


def test_a_run_whose_page_object_cannot_act_exits_4(tmp_path):
    matrix_path, scenario_path = files(tmp_path)
    scenario = load_scenario(scenario_path)
    options = SimOptions(test_support=True, faults=[Fault("/oauth/authorize", "stuck-controls")])
    with SimServer(create_app(scenario, options)) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "scopematrix.cli", "run", "--matrix", str(matrix_path), "--scenario",
             str(scenario_path), "--target-url", server.url, "--user", "admin-marketplace", "--account", "enterprise",
             "--scope-set", "crm-read", "--no-diagnose", "--reports", str(tmp_path / "reports")],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
        )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "??" in proc.stdout  # the grid marks the cell unrecognized


def test_run_co_lists_the_cells_and_writes_nothing(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", "run", "--co", "-k", "super-admin and free",
         "--reports", str(tmp_path / "reports")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_cell[super-admin@free/crm-read]" in proc.stdout
    assert "9/105 tests collected" in proc.stdout
    assert not (tmp_path / "reports").exists()
