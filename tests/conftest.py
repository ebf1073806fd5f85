from __future__ import annotations

from collections.abc import Iterator

import pytest

from scopematrix.simulator.app import SimulatorApp, create_app
from scopematrix.simulator.scenario import Scenario, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions


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
def browser_type_launch_args(browser_type_launch_args: dict[str, object]) -> dict[str, object]:
    """pytest-playwright's browser, pointed at the Chromium set-up found (Playwright's own or the system's)."""
    from scopematrix.browser import CHROMIUM_ARGS, find_browser

    choice = find_browser()
    assert choice is not None, "run make setup"
    return {**browser_type_launch_args, "executable_path": choice.executable_path, "args": list(CHROMIUM_ARGS)}
