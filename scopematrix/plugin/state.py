"""The run a pytest session serves: its matrix, cells, target and engine, kept in pytest's stash."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink
from scopematrix.flow import FlowOptions, shared_logins_dir
from scopematrix.matrix import Cell, Matrix, load_matrix
from scopematrix.plugin.diskfull import AllureWrites
from scopematrix.preflight import check_browser
from scopematrix.runs import read_ids
from scopematrix.slots import default_concurrency
from scopematrix.target import Target, live_target, load_env

SUITE = Path(__file__).parents[1] / "suite" / "test_matrix.py"


@dataclass
class RunState:
    matrix: Matrix
    cells: list[Cell]
    run_dir: Path
    run_id: str
    target: Target
    is_worker: bool
    worker_id: str
    engine: Engine | None = None
    sim: Any = None
    by_id: dict[str, Cell] = field(default_factory=dict)
    prefetched: set[str] = field(default_factory=set)
    selected: set[str] | None = None
    report: Path | None = None
    allure: AllureWrites | None = None  # Allure's writes, guarded against a full disk
    share_logins: bool = False  # a matrix run: its processes (xdist workers, a resume) share logins
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    t0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.by_id = {c.id: c for c in self.cells}


STATE = pytest.StashKey[RunState]()
USER_OF_NODE = re.compile(r"\[([^@\]]+)@")


def opt(config: pytest.Config, name: str, default: Any = None) -> Any:
    try:
        return config.getoption(name)
    except ValueError:
        return default


def worker_input(config: pytest.Config) -> dict[str, Any] | None:
    return getattr(config, "workerinput", None)


def matrix_files(config: pytest.Config) -> list[tuple[int, Path]]:
    """The matrix YAML files named on the command line (`pytest fixtures/matrix.yaml`), with their positions."""
    found = []
    for i, arg in enumerate(config.args):
        path = Path(arg.split("::")[0])
        if path.suffix in (".yaml", ".yml") and not path.is_dir():
            found.append((i, path))
    return found


def is_matrix_run(config: pytest.Config) -> bool:
    return bool(opt(config, "sm_run_dir") or matrix_files(config))


def build_state(
    config: pytest.Config,
    run_dir: Path,
    winput: dict[str, Any] | None,
    everyone: bool = False,
    share_logins: bool = False,
) -> RunState:
    """The run: matrix, selected cells, target (a simulator started here unless one is given).

    `everyone`: a session of the user's own tests, which may sign in any matrix user. `share_logins`: a
    matrix run, whose processes (xdist workers, a resume) share logins.
    """
    matrix = load_matrix(
        Path(opt(config, "sm_matrix")) if opt(config, "sm_matrix") else None,
        Path(opt(config, "sm_baseline")) if opt(config, "sm_baseline") else None,
    )
    cells = matrix.select(opt(config, "sm_user"), opt(config, "sm_account"), opt(config, "sm_scope_set"))
    only = opt(config, "sm_cells")
    if only:
        wanted = set(read_ids(Path(only)))
        cells = [c for c in cells if c.id in wanted]
    diagnose = not opt(config, "sm_no_diagnose")
    user_ids = {u.id for u in matrix.spec.users} if everyone else matrix.users_needed(cells, diagnose=diagnose)
    env = load_env(Path(opt(config, "sm_env_file")) if opt(config, "sm_env_file") else None)
    sim = None
    if opt(config, "sm_target") == "live":
        apps = None if everyone else matrix.apps_needed(cells, diagnose=diagnose)
        target = live_target(matrix, env, user_ids, opt(config, "sm_app_url"), opt(config, "sm_api_url"), apps)
    else:
        from scopematrix.simtarget import sim_target, start_simulator
        from scopematrix.simulator.scenario import load_scenario

        scenario_path = Path(opt(config, "sm_scenario")) if opt(config, "sm_scenario") else None
        url = (winput or {}).get("sm_sim_url") or opt(config, "sm_target_url")
        if url:
            scenario = load_scenario(scenario_path)
        else:
            sim, scenario = start_simulator(scenario_path, float(opt(config, "sm_latency") or 0.0))
            url = sim.url
        target = sim_target(matrix, scenario, url, user_ids, env)
    return RunState(
        matrix=matrix,
        cells=cells,
        run_dir=run_dir,
        run_id=run_dir.name,
        target=target,
        is_worker=winput is not None,
        worker_id=winput["workerid"] if winput else "main",
        sim=sim,
        share_logins=share_logins,
    )


def engine_for(config: pytest.Config, state: RunState | None = None, wait: bool = True) -> Engine:
    state = state or config.stash[STATE]
    if state.engine is None:
        headless = not opt(config, "headed", False)
        connect = opt(config, "sm_connect")
        choice = find_browser(headless=headless) if connect else check_browser(headless=headless)
        is_live = state.target.kind == "live"
        grace = opt(config, "sm_grace") or (10.0 if is_live else 2.0)
        timeout = opt(config, "sm_timeout") or (30.0 if is_live else 15.0)
        state.engine = Engine(
            target=state.target,
            matrix=state.matrix,
            run_dir=state.run_dir,
            run_id=state.run_id,
            flow=FlowOptions(
                approve=bool(opt(config, "sm_approve")),
                grace_s=grace,
                timeout_ms=timeout * 1000,
                retries=int(opt(config, "sm_retries", 1)),
                tracing=str(opt(config, "tracing", "off") or "off"),
                video=str(opt(config, "video", "off") or "off"),
                shared_logins=shared_logins_dir(state.run_id) if state.share_logins else None,
                pinned=state.matrix.spec.pinned,
            ),
            browser=BrowserOptions(
                executable_path=choice.executable_path if choice else None,
                headless=headless,
                slow_mo=float(opt(config, "slowmo", 0) or 0),
                channel=(opt(config, "browser_channel") or None),
                connect=connect,
                remote_executable=opt(config, "sm_remote_executable"),
                launch_timeout_ms=timeout * 1000,
            ),
            concurrency=int(opt(config, "sm_concurrency", default_concurrency())),
            diagnose=not opt(config, "sm_no_diagnose"),
            sink=ResultSink(state.run_dir / f"results-{state.worker_id}.jsonl"),
            logins_per_minute=opt(config, "sm_logins_per_minute") or (6.0 if is_live else None),
        ).start(wait)
    return state.engine


def cell_id(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "scope_set" not in callspec.params:
        return None
    p = callspec.params
    return f"{p['user']}@{p['account']}/{p['scope_set']}"
