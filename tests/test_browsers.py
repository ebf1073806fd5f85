"""The headless shell and the full browser both work, and nothing leaves the machine against the simulator."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Error as PlaywrightError

from scopematrix import engine as engine_module
from scopematrix.browser import BrowserChoice, find_browser
from scopematrix.engine import BrowserOptions, Engine, prewarm
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


def _engine(scenario: Scenario, url: str, tmp_path, executable: str | None) -> Engine:
    return Engine(
        target=sim_target(MATRIX, scenario, url, {"admin-marketplace"}), matrix=MATRIX, run_dir=tmp_path,
        run_id="w", flow=FlowOptions(), browser=BrowserOptions(executable), concurrency=1, diagnose=False, sink=None,
    )  # fmt: skip


def test_a_prewarmed_driver_is_taken_by_the_next_engine_and_only_by_it(scenario: Scenario, tmp_path):
    (cell,) = [c for c in MATRIX.cells() if c.id == CELL]
    prewarm()
    prewarm()  # (one spare at most)
    assert len(engine_module._SPARE) == 1
    spare = engine_module._SPARE[0]
    assert spare.playwright is not None and spare.thread.is_alive()  # Node is starting already
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        first = _engine(scenario, server.url, tmp_path, browsers()[0].executable_path)
        second = _engine(scenario, server.url, tmp_path, browsers()[0].executable_path)
        assert first._driver is spare and second._driver is not spare and not engine_module._SPARE
        first.start()
        try:
            assert first.result(cell).outcome is Outcome.GRANTED_PARTIAL
        finally:
            first.stop()
            second.stop()
    assert not spare.thread.is_alive()


def test_a_start_that_does_not_wait_reports_a_failed_launch_at_the_first_call(scenario: Scenario, tmp_path):
    (cell,) = [c for c in MATRIX.cells() if c.id == CELL]
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as server:
        engine = _engine(scenario, server.url, tmp_path, str(tmp_path / "no-such-browser")).start(wait=False)
        try:
            with pytest.raises(PlaywrightError):
                engine.result(cell, timeout=60)
        finally:
            engine.stop()  # returns: nothing half-started is left waiting


def test_an_engine_that_took_a_prewarmed_driver_but_never_started_stops_at_once(scenario: Scenario, tmp_path):
    prewarm()
    spare = engine_module._SPARE[0]
    engine = _engine(scenario, "http://127.0.0.1:9", tmp_path, None)
    assert engine._driver is spare
    started = time.monotonic()
    engine.stop()  # nothing to wait for: the driver it took is stopped, its thread ends
    assert time.monotonic() - started < 10 and not spare.thread.is_alive()
