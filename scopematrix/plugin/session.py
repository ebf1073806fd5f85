"""The matrix as a pytest session: the YAML file stands for the packaged suite, one test per cell, cells
submitted to the engine as soon as they are collected, users kept on one xdist worker each, and the report
written when the session ends."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from scopematrix.browser import check_video
from scopematrix.engine import Engine, ResultsUnwritable
from scopematrix.errors import UsageError
from scopematrix.flow import shared_logins_dir
from scopematrix.model import CellResult
from scopematrix.plugin.diskfull import AllureWrites
from scopematrix.plugin.state import (
    STATE,
    SUITE,
    USER_OF_NODE,
    RunState,
    build_state,
    cell_id,
    engine_for,
    is_matrix_run,
    matrix_files,
    opt,
    worker_input,
)
from scopematrix.redact import Redactor
from scopematrix.runs import new_run_id, write_ids


def pytest_cmdline_main(config: pytest.Config) -> None:
    # One user's cells on one worker: its login is reused and its cells run concurrently there.
    if is_matrix_run(config) and opt(config, "numprocesses") and opt(config, "dist") in ("no", "load"):
        config.option.dist = "loadgroup"


def _use_matrix_files(config: pytest.Config) -> None:
    """`pytest fixtures/matrix.yaml`: that matrix, collected as the packaged suite."""
    files = matrix_files(config)
    if not files:
        return
    if len(files) > 1:
        raise pytest.UsageError(
            f"{len(files)} matrix files given ({', '.join(str(p) for _, p in files)}). Fix: run one matrix at a time."
        )
    index, path = files[0]
    if not path.is_file():
        raise pytest.UsageError(f"{path}: matrix file not found. Fix: pass an existing matrix YAML.")
    config.option.sm_matrix = str(path)
    config.args[index] = str(SUITE)


def pytest_configure(config: pytest.Config) -> None:
    if not is_matrix_run(config):
        return
    _use_matrix_files(config)
    winput = worker_input(config)
    run_dir = Path(
        opt(config, "sm_run_dir") or (winput or {}).get("sm_run_dir") or Path("reports").absolute() / new_run_id()
    )
    if opt(config, "output") == "test-results":
        # pytest-playwright empties its --output folder at start: the matrix never touches ./test-results.
        config.option.output = str(run_dir / "playwright-output")
    try:
        check_video(opt(config, "video"))
        state = config.stash[STATE] = build_state(config, run_dir, winput, share_logins=True)
        runs_cells = not (opt(config, "collectonly") or opt(config, "help"))
        if runs_cells and not (opt(config, "numprocesses") and not state.is_worker):
            # The browser starts while pytest collects (not for --co or --help, nor on an xdist controller).
            engine_for(config, state, wait=False)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan is what pytest selected (after -k, -m, --lf): write it where the CLI reads it back."""
    state = session.config.stash.get(STATE, None)
    if state is None or (opt(session.config, "numprocesses") and not state.is_worker):
        return  # under xdist the workers collect, the controller doesn't
    plan = opt(session.config, "sm_plan")
    if plan:
        tmp = Path(plan).with_name(f".{state.worker_id}.plan.tmp")
        write_ids(tmp, [cid for item in session.items if (cid := cell_id(item))])
        tmp.replace(plan)
    state.allure = AllureWrites().install()  # every plugin has configured by now, allure-pytest included
    if state.engine is not None and not state.is_worker:
        _prefetch(state, session, state.engine, "")  # the logins and the first cells start now, not at the first test


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


def pytest_configure_node(node: Any) -> None:  # xdist hook: hand the simulator URL and run folder to workers
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["sm_sim_url"] = state.target.app_url if state.target.kind == "sim" else None
        node.workerinput["sm_run_dir"] = str(state.run_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE, None)
    if state is None or "cell_result" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        "user,account,scope_set",
        [pytest.param(c.user.id, c.account.id, c.scope_set.id, id=c.id) for c in state.cells],
    )


def _prefetch(state: RunState, session: pytest.Session, engine: Engine, user: str) -> None:
    """Submit, once, every cell this process will run: all selected cells, or under xdist the user's
    group (loadgroup sends a whole group to one worker). The engine runs them `concurrency` at a time."""
    if state.is_worker and not opt(session.config, "loadgroup"):
        return  # scheduled some other way, a user's cells may be on any worker: run only what is asked
    group = user if state.is_worker else "*"
    if group in state.prefetched:
        return
    state.prefetched.add(group)
    if state.selected is None:
        state.selected = {cid for item in session.items if (cid := cell_id(item))}
    engine.submit([c for c in state.cells if c.id in state.selected and group in ("*", c.user.id)])


@pytest.fixture
def cell_result(request: pytest.FixtureRequest, user: str, account: str, scope_set: str) -> CellResult:
    state = request.config.stash[STATE]
    engine = engine_for(request.config)
    _prefetch(state, request.session, engine, user)
    try:
        return engine.result(state.by_id[f"{user}@{account}/{scope_set}"])
    except ResultsUnwritable as exc:  # a full disk: every later cell would be lost too
        pytest.exit(str(exc), returncode=pytest.ExitCode.INTERNAL_ERROR)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    if state.engine is not None:
        state.engine.stop()
    if state.sim is not None:
        state.sim.stop()
    if not state.is_worker and exitstatus != pytest.ExitCode.INTERRUPTED:
        # The run's shared logins are session cookies: gone with the run (kept only for a resume).
        shutil.rmtree(shared_logins_dir(state.run_id), ignore_errors=True)
    if state.is_worker or opt(session.config, "sm_no_report") or opt(session.config, "collectonly"):
        return
    if not session.items and not list(state.run_dir.glob("results-*.jsonl")):
        return  # nothing selected, nothing ran: no report (pytest's own exit status says so)
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
        command=Redactor()("pytest " + " ".join(session.config.invocation_params.args)),
    )
    finish(state.run_dir, meta, state.matrix)
    state.report = state.run_dir / "index.html"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(STATE, None)
    if state is not None and state.allure is not None and state.allure.failure:
        terminalreporter.write_line(f"scopematrix: Allure results stopped at a failed write ({state.allure.failure})")
    if state is not None and state.report is not None:
        terminalreporter.write_line(f"scopematrix report: {state.report}")


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker:
        return None
    return (
        f"scopematrix: {len(state.cells)} cells, target {state.target.kind} {state.target.app_url}, pid {os.getpid()}"
    )


@pytest.hookimpl(trylast=True)
def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    """Right after pytest-playwright: our `browser_type_launch_args` then overrides its own, and any
    conftest.py (loaded later) can still override ours."""
    if getattr(plugin, "__name__", None) == "pytest_playwright.pytest_playwright" and not manager.has_plugin(
        "scopematrix.launch"
    ):
        manager.import_plugin("scopematrix.launch")
