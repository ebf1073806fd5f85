from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scopematrix.launch import with_found_chromium
from scopematrix.simulator.app import SimulatorApp, create_app
from scopematrix.simulator.scenario import Scenario, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """This suite's own pytest-playwright tests (the report page) launch the Chromium set up here, as any
    suite on this machine must: the plugin sets a browser only for sessions that use its fixtures."""
    return with_found_chromium(browser_type_launch_args)


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario()


@pytest.fixture
def sim_app(scenario: Scenario) -> SimulatorApp:
    return create_app(scenario, SimOptions(test_support=True))


@pytest.fixture
def sim_server(scenario: Scenario) -> Iterator[SimServer]:
    """A simulator on an ephemeral loopback port, ready-waited and shut down cleanly."""
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        yield server


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the default matrix with diagnosis, through the CLI, as `make matrix` makes it (one per session)."""
    import subprocess
    import sys

    reports = tmp_path_factory.mktemp("default-run")
    proc = subprocess.run([sys.executable, "-m", "scopematrix.cli", "run", "--reports", str(reports), "--quiet"],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run,) = reports.glob("run-*")
    return run


EXAMPLES = Path(__file__).parent / "examples"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/examples runs in its own pytest process (test_pytest_route.py), as a QA engineer runs it:
    pytest-playwright's sync Playwright would otherwise hold this process's event loop for the session."""
    if collection_path != EXAMPLES:
        return None
    named = [Path(a.split("::")[0]).resolve() for a in config.args]
    return not any(p.is_relative_to(EXAMPLES) for p in named) or None
