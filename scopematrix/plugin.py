"""The pytest plugin behind `scopematrix run`: expands the matrix into tests and reports at the end.

Loaded with `-p scopematrix.plugin` on scopematrix/suite/test_matrix.py. Works serially and under
pytest-xdist (`-n N`): each user's cells go to one worker (xdist_group), the controller starts the
simulator once and writes the report from every worker's results file.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import allure
import pytest

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink
from scopematrix.errors import UsageError
from scopematrix.flow import FlowOptions
from scopematrix.matrix import Cell, Matrix, load_matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.runs import read_ids, write_ids
from scopematrix.target import Target, live_target, load_env


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
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    t0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.by_id = {c.id: c for c in self.cells}


STATE = pytest.StashKey[RunState]()
USER_OF_NODE = re.compile(r"\[([^@\]]+)@")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("scopematrix")
    g.addoption("--sm-matrix", default=None, help="matrix YAML (default fixtures/matrix.yaml)")
    g.addoption("--sm-scenario", default=None, help="simulator scenario YAML (default fixtures/scenario.yaml)")
    g.addoption("--sm-target", default="sim", choices=["sim", "live"])
    g.addoption("--sm-target-url", default=None, help="use an already running simulator at this URL")
    g.addoption("--sm-app-url", default=None)
    g.addoption("--sm-api-url", default=None)
    g.addoption("--sm-env-file", default=None)
    g.addoption("--sm-user", action="append", default=[])
    g.addoption("--sm-account", action="append", default=[])
    g.addoption("--sm-scope-set", action="append", default=[])
    g.addoption("--sm-cells", default=None, help="JSON file listing the cell ids to run")
    g.addoption("--sm-concurrency", type=int, default=4)
    g.addoption("--sm-approve", action="store_true")
    g.addoption("--sm-no-diagnose", action="store_true")
    g.addoption("--sm-run-dir", default=None)
    g.addoption("--sm-baseline", default=None)
    g.addoption("--sm-connect", default=None)
    g.addoption("--sm-remote-executable", default=None)
    g.addoption("--sm-grace", type=float, default=None)
    g.addoption("--sm-timeout", type=float, default=None, help="per-action timeout in seconds")
    g.addoption("--sm-logins-per-minute", type=float, default=None)
    g.addoption("--sm-latency", type=float, default=0.0, help="simulator per-response latency (s)")
    g.addoption("--sm-retries", type=int, default=1)
    g.addoption("--sm-plan", default=None, help="write the ids of the cells pytest selected (after -k, --lf) here")
    g.addoption("--sm-no-report", action="store_true", help="don't write the report (the CLI writes it)")


def _opt(config: pytest.Config, name: str, default: Any = None) -> Any:
    try:
        return config.getoption(name)
    except ValueError:
        return default


def _worker_input(config: pytest.Config) -> dict[str, Any] | None:
    return getattr(config, "workerinput", None)


def pytest_cmdline_main(config: pytest.Config) -> None:
    # One user's cells on one worker: its login is reused and its cells run concurrently there.
    if _opt(config, "sm_run_dir") and _opt(config, "numprocesses") and _opt(config, "dist") in ("no", "load"):
        config.option.dist = "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    if not _opt(config, "sm_run_dir"):
        return
    winput = _worker_input(config)
    matrix = load_matrix(
        Path(_opt(config, "sm_matrix")) if _opt(config, "sm_matrix") else None,
        Path(_opt(config, "sm_baseline")) if _opt(config, "sm_baseline") else None,
    )
    cells = matrix.select(_opt(config, "sm_user"), _opt(config, "sm_account"), _opt(config, "sm_scope_set"))
    only = _opt(config, "sm_cells")
    if only:
        wanted = set(read_ids(Path(only)))
        cells = [c for c in cells if c.id in wanted]
    run_dir = Path(_opt(config, "sm_run_dir"))
    user_ids = matrix.users_needed(cells, diagnose=not _opt(config, "sm_no_diagnose"))
    env = load_env(Path(_opt(config, "sm_env_file")) if _opt(config, "sm_env_file") else None)
    sim = None
    if _opt(config, "sm_target") == "live":
        apps = matrix.apps_needed(cells, diagnose=not _opt(config, "sm_no_diagnose"))
        target = live_target(matrix, env, user_ids, _opt(config, "sm_app_url"), _opt(config, "sm_api_url"), apps)
    else:
        from scopematrix.simtarget import sim_target, start_simulator
        from scopematrix.simulator.scenario import load_scenario

        scenario_path = Path(_opt(config, "sm_scenario")) if _opt(config, "sm_scenario") else None
        url = winput["sm_sim_url"] if winput else _opt(config, "sm_target_url")
        if url:
            scenario = load_scenario(scenario_path)
        else:
            sim, scenario = start_simulator(scenario_path, float(_opt(config, "sm_latency") or 0.0))
            url = sim.url
        target = sim_target(matrix, scenario, url, user_ids, env)
    state = RunState(
        matrix=matrix,
        cells=cells,
        run_dir=run_dir,
        run_id=run_dir.name,
        target=target,
        is_worker=winput is not None,
        worker_id=winput["workerid"] if winput else "main",
        sim=sim,
    )
    config.stash[STATE] = state


def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan is what pytest selected (after -k, -m, --lf): write it where the CLI reads it back."""
    state = session.config.stash.get(STATE, None)
    plan = _opt(session.config, "sm_plan")
    if state is None or not plan or (_opt(session.config, "numprocesses") and not state.is_worker):
        return  # under xdist the workers collect, the controller doesn't
    tmp = Path(plan).with_name(f".{state.worker_id}.plan.tmp")
    write_ids(tmp, [cid for item in session.items if (cid := _cell_id(item))])
    tmp.replace(plan)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send each user's cells to one worker, so its login is reused and its cells run concurrently there.

    xdist's own loadgroup rewrites node ids, which has no effect under pytest 9; a scope-by-user
    scheduler needs no such trick.
    """
    if config.stash.get(STATE, None) is None:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUser(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            match = USER_OF_NODE.search(nodeid)
            return match.group(1) if match else nodeid

    return ByUser(config, log)


def pytest_configure_node(node: Any) -> None:  # xdist hook: hand the simulator URL to workers
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["sm_sim_url"] = state.target.app_url if state.target.kind == "sim" else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE, None)
    if state is None or "cell_result" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        "user,account,scope_set",
        [pytest.param(c.user.id, c.account.id, c.scope_set.id, id=c.id) for c in state.cells],
    )


def _engine(config: pytest.Config) -> Engine:
    state = config.stash[STATE]
    if state.engine is None:
        headless = not _opt(config, "headed", False)
        choice = find_browser(headless=headless)
        connect = _opt(config, "sm_connect")
        if choice is None and not connect:
            raise UsageError("no Chromium found.", "run 'make setup' (or python -m scopematrix.browser).")
        is_live = state.target.kind == "live"
        grace = _opt(config, "sm_grace") or (10.0 if is_live else 2.0)
        timeout = _opt(config, "sm_timeout") or (30.0 if is_live else 15.0)
        state.engine = Engine(
            target=state.target,
            matrix=state.matrix,
            run_dir=state.run_dir,
            run_id=state.run_id,
            flow=FlowOptions(
                approve=bool(_opt(config, "sm_approve")),
                grace_s=grace,
                timeout_ms=timeout * 1000,
                retries=int(_opt(config, "sm_retries", 1)),
                tracing=str(_opt(config, "tracing", "off") or "off"),
                pinned=state.matrix.spec.pinned,
            ),
            browser=BrowserOptions(
                executable_path=choice.executable_path if choice else None,
                headless=headless,
                slow_mo=float(_opt(config, "slowmo", 0) or 0),
                channel=(_opt(config, "browser_channel") or None),
                connect=connect,
                remote_executable=_opt(config, "sm_remote_executable"),
            ),
            concurrency=int(_opt(config, "sm_concurrency", 4)),
            diagnose=not _opt(config, "sm_no_diagnose"),
            sink=ResultSink(state.run_dir / f"results-{state.worker_id}.jsonl"),
            logins_per_minute=_opt(config, "sm_logins_per_minute") or (6.0 if is_live else None),
        ).start()
    return state.engine


def _cell_id(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "scope_set" not in callspec.params:
        return None
    p = callspec.params
    return f"{p['user']}@{p['account']}/{p['scope_set']}"


def _prefetch(state: RunState, session: pytest.Session, engine: Engine, user: str) -> None:
    """Submit, once, every cell this process will run: all selected cells, or under xdist the user's
    group (loadgroup sends a whole group to one worker). The engine runs them `concurrency` at a time."""
    if state.is_worker and not _opt(session.config, "loadgroup"):
        return  # scheduled some other way, a user's cells may be on any worker: run only what is asked
    group = user if state.is_worker else "*"
    if group in state.prefetched:
        return
    state.prefetched.add(group)
    if state.selected is None:
        state.selected = {cid for item in session.items if (cid := _cell_id(item))}
    engine.submit([c for c in state.cells if c.id in state.selected and group in ("*", c.user.id)])


@pytest.fixture
def cell_result(request: pytest.FixtureRequest, user: str, account: str, scope_set: str) -> CellResult:
    state = request.config.stash[STATE]
    engine = _engine(request.config)
    _prefetch(state, request.session, engine, user)
    return engine.result(state.by_id[f"{user}@{account}/{scope_set}"])


def record_allure(config: pytest.Config, result: CellResult) -> None:
    """Allure labels and evidence for a cell; called from the test body, so the title sticks and the
    attachments belong to the test, not to a fixture's set-up."""
    run_dir = config.stash[STATE].run_dir
    allure.dynamic.title(f"{result.user} × {result.scope_set} on {result.account}: {result.outcome.label}")
    allure.dynamic.parent_suite(result.account)
    allure.dynamic.suite(result.user)
    allure.dynamic.sub_suite(result.scope_set)
    allure.dynamic.tag(result.outcome.value)
    allure.dynamic.story(result.outcome.label)
    allure.dynamic.feature(result.account)
    decisive = result.decisive
    if decisive is not None and (run_dir / decisive.path).is_file():
        allure.attach.file(str(run_dir / decisive.path), name=f"decisive screen: {decisive.screen.value}",
                           attachment_type=allure.attachment_type.PNG)  # fmt: skip
    if result.html_path and (run_dir / result.html_path).is_file():
        allure.attach.file(str(run_dir / result.html_path), name="unknown screen (HTML)",
                           attachment_type=allure.attachment_type.HTML)  # fmt: skip
    if result.trace_path and (run_dir / result.trace_path).is_file():
        allure.attach.file(str(run_dir / result.trace_path), name="Playwright trace", extension="zip")
    d = result.diagnosis
    if d is not None:
        lines = [d.summary, f"blocking scopes: {', '.join(d.blocking_scopes) or '-'}; attribution: {d.attribution}"]
        lines += [f"{f.scope}: {f.level}-level {f.hint}".rstrip() for f in d.findings]
        verdict = {True: "verified", False: "does not work", None: "not probed"}
        lines += [f"fix ({r.kind}, {verdict[r.verified]}): {r.summary}" for r in d.remedies]
        allure.attach("\n".join(lines), name="diagnosis", attachment_type=allure.attachment_type.TEXT)


class InfrastructureTrouble(Exception):
    """A cell ended in error or on an unknown screen: shown as broken, not as a product failure."""


def check_cell(result: CellResult) -> None:
    """The test's verdict is the cell's: a regression fails, infrastructure trouble is broken."""
    detail = f"{result.cell_id}: {result.heading} - {result.message}"
    if result.outcome is Outcome.UNRECOGNIZED and not result.matches_expectation:
        raise InfrastructureTrouble(f"unknown screen: {detail}")
    if result.outcome.infrastructure and not result.matches_expectation:
        raise InfrastructureTrouble(f"infrastructure: {result.outcome.value}: {detail}")
    if result.regression:
        assert result.expected is not None
        why = f" ({result.diagnosis.summary})" if result.diagnosis else ""
        raise AssertionError(f"regression: expected {result.expected.value}, got {result.outcome.value}{why}: {detail}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    if state.engine is not None:
        state.engine.stop()
    if state.sim is not None:
        state.sim.stop()
    if state.is_worker or _opt(session.config, "sm_no_report"):
        return
    # A plain pytest run of the matrix writes the same report as `scopematrix run` (which writes its own).
    from scopematrix.report.build import RunMeta
    from scopematrix.runs import finish, versions

    meta = RunMeta(
        run_id=state.run_id,
        target=state.target.kind,
        target_url=state.target.app_url if state.target.kind == "live" else "embedded simulator",
        app=", ".join(a.name for a in state.matrix.spec.apps),
        started_at=state.started_at,
        duration_s=round(time.monotonic() - state.t0, 2),
        versions=versions(),
        interrupted=exitstatus == pytest.ExitCode.INTERRUPTED,
        planned_cells=len(session.items) or len(state.cells),
        command="pytest " + " ".join(session.config.invocation_params.args),
    )
    finish(state.run_dir, meta, state.matrix)
    state.report = state.run_dir / "index.html"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(STATE, None)
    if state is not None and state.report is not None:
        terminalreporter.write_line(f"scopematrix report: {state.report}")


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker:
        return None
    return (
        f"scopematrix: {len(state.cells)} cells, target {state.target.kind} {state.target.app_url}, pid {os.getpid()}"
    )
