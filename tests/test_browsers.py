"""The headless shell and the full browser both work, and nothing leaves the machine against the simulator."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Error as PlaywrightError

from scopematrix.browser import BrowserChoice, find_browser
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import load_matrix
from scopematrix.model import Outcome
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()
CELL = "admin-marketplace@marketing-pro/deals-owners"


def browsers() -> list[BrowserChoice]:
    shell, full = find_browser(headless=True), find_browser()
    assert shell is not None and full is not None, "make setup installs both"
    return [shell, full]


@pytest.mark.parametrize("choice", browsers(), ids=lambda c: c.source)
def test_the_redirect_is_captured_and_nothing_resolves_but_loopback(scenario: Scenario, tmp_path, choice):
    cells = [c for c in MATRIX.cells() if c.id == CELL]
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        engine = Engine(
            target=sim_target(MATRIX, scenario, server.url, {"admin-marketplace"}), matrix=MATRIX, run_dir=tmp_path,
            run_id="b", flow=FlowOptions(approve=True), browser=BrowserOptions(choice.executable_path),
            concurrency=1, diagnose=False, sink=None,
        ).start()  # fmt: skip
        try:
            (result,) = engine.run_all(cells)
            assert engine.harness is not None

            async def resolve(url: str) -> str:
                assert engine.harness is not None
                context = await (await engine.harness.browser()).new_context()
                try:
                    await (await context.new_page()).goto(url, timeout=10_000)
                    return "reached"
                except PlaywrightError as exc:
                    return exc.message
                finally:
                    await context.close()

            outside = asyncio.run_coroutine_threadsafe(resolve("http://example.org/"), engine._loop).result(30)
            redirect = asyncio.run_coroutine_threadsafe(
                resolve("http://scopematrix.example/oauth/callback"), engine._loop
            ).result(30)
        finally:
            engine.stop()
    # HubSpot redirected to the app's redirect_uri; the code came back to us and was exchanged.
    assert result.outcome is Outcome.GRANTED_PARTIAL and result.granted_scopes, result
    assert result.timings["navigations"] == 3  # the authorize URL, the consent POST, the redirect: no detours
    for answer in (outside, redirect):
        assert "ERR_NAME_NOT_RESOLVED" in answer, answer
