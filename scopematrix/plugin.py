"""The pytest plugin (registered as `scopematrix`): the matrix as tests, and fixtures for your own tests.

`pytest fixtures/matrix.yaml -k "sales-admin and enterprise"` runs the matrix in that YAML: the file
stands for the packaged suite (scopematrix/suite/test_matrix.py), one test per cell. `scopematrix run`
is a front end over the same route. Works serially and under pytest-xdist (`-n N`): each user's cells
go to one worker, the controller starts the simulator once and writes the report from every worker's
results file. Without a matrix on the command line the plugin only offers its fixtures: `sm_target`,
`authorize`, `signed_in_context` and `signed_in_page`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import allure
import pytest

from scopematrix.browser import check_video, find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink
from scopematrix.errors import UsageError
from scopematrix.flow import FlowOptions, LoginFailure, attempt_folder, shared_logins_dir
from scopematrix.matrix import Cell, Matrix, ScopeSetEntry, load_matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.runs import new_run_id, read_ids, write_ids
from scopematrix.target import Target, live_target, load_env

SUITE = Path(__file__).parent / "suite" / "test_matrix.py"


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
    share_logins: bool = False  # a matrix run: its processes (xdist workers, a resume) share logins
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


def _matrix_files(config: pytest.Config) -> list[tuple[int, Path]]:
    """The matrix YAML files named on the command line (`pytest fixtures/matrix.yaml`), with their positions."""
    found = []
    for i, arg in enumerate(config.args):
        path = Path(arg.split("::")[0])
        if path.suffix in (".yaml", ".yml") and not path.is_dir():
            found.append((i, path))
    return found


def _is_matrix_run(config: pytest.Config) -> bool:
    return bool(_opt(config, "sm_run_dir") or _matrix_files(config))


def pytest_cmdline_main(config: pytest.Config) -> None:
    # One user's cells on one worker: its login is reused and its cells run concurrently there.
    if _is_matrix_run(config) and _opt(config, "numprocesses") and _opt(config, "dist") in ("no", "load"):
        config.option.dist = "loadgroup"


def _use_matrix_files(config: pytest.Config) -> None:
    """`pytest fixtures/matrix.yaml`: that matrix, collected as the packaged suite."""
    files = _matrix_files(config)
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
    if not _is_matrix_run(config):
        return
    _use_matrix_files(config)
    winput = _worker_input(config)
    run_dir = Path(
        _opt(config, "sm_run_dir") or (winput or {}).get("sm_run_dir") or Path("reports").absolute() / new_run_id()
    )
    if _opt(config, "output") == "test-results":
        # pytest-playwright empties its --output folder at start: the matrix never touches ./test-results.
        config.option.output = str(run_dir / "playwright-output")
    try:
        check_video(_opt(config, "video"))
        state = config.stash[STATE] = _build_state(config, run_dir, winput, share_logins=True)
        runs_cells = not (_opt(config, "collectonly") or _opt(config, "help"))
        if runs_cells and not (_opt(config, "numprocesses") and not state.is_worker):
            # The browser starts while pytest collects (not for --co or --help, nor on an xdist controller).
            _engine(config, state, wait=False)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _build_state(
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
        Path(_opt(config, "sm_matrix")) if _opt(config, "sm_matrix") else None,
        Path(_opt(config, "sm_baseline")) if _opt(config, "sm_baseline") else None,
    )
    cells = matrix.select(_opt(config, "sm_user"), _opt(config, "sm_account"), _opt(config, "sm_scope_set"))
    only = _opt(config, "sm_cells")
    if only:
        wanted = set(read_ids(Path(only)))
        cells = [c for c in cells if c.id in wanted]
    diagnose = not _opt(config, "sm_no_diagnose")
    user_ids = {u.id for u in matrix.spec.users} if everyone else matrix.users_needed(cells, diagnose=diagnose)
    env = load_env(Path(_opt(config, "sm_env_file")) if _opt(config, "sm_env_file") else None)
    sim = None
    if _opt(config, "sm_target") == "live":
        apps = None if everyone else matrix.apps_needed(cells, diagnose=diagnose)
        target = live_target(matrix, env, user_ids, _opt(config, "sm_app_url"), _opt(config, "sm_api_url"), apps)
    else:
        from scopematrix.simtarget import sim_target, start_simulator
        from scopematrix.simulator.scenario import load_scenario

        scenario_path = Path(_opt(config, "sm_scenario")) if _opt(config, "sm_scenario") else None
        url = (winput or {}).get("sm_sim_url") or _opt(config, "sm_target_url")
        if url:
            scenario = load_scenario(scenario_path)
        else:
            sim, scenario = start_simulator(scenario_path, float(_opt(config, "sm_latency") or 0.0))
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan is what pytest selected (after -k, -m, --lf): write it where the CLI reads it back."""
    state = session.config.stash.get(STATE, None)
    if state is None or (_opt(session.config, "numprocesses") and not state.is_worker):
        return  # under xdist the workers collect, the controller doesn't
    plan = _opt(session.config, "sm_plan")
    if plan:
        tmp = Path(plan).with_name(f".{state.worker_id}.plan.tmp")
        write_ids(tmp, [cid for item in session.items if (cid := _cell_id(item))])
        tmp.replace(plan)
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


def _engine(config: pytest.Config, state: RunState | None = None, wait: bool = True) -> Engine:
    state = state or config.stash[STATE]
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
                video=str(_opt(config, "video", "off") or "off"),
                shared_logins=shared_logins_dir(state.run_id) if state.share_logins else None,
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
        ).start(wait)
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
    if not state.is_worker and exitstatus != pytest.ExitCode.INTERRUPTED:
        # The run's shared logins are session cookies: gone with the run (kept only for a resume).
        shutil.rmtree(shared_logins_dir(state.run_id), ignore_errors=True)
    if state.is_worker or _opt(session.config, "sm_no_report") or _opt(session.config, "collectonly"):
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


# -- pytest-playwright's artifacts for a cell: --tracing, --video, --screenshot into --output -----------------


def publish_artifacts(config: pytest.Config, result: CellResult, output_path: str) -> list[Path]:
    """Copy the cell's trace, video and decisive screenshot into pytest-playwright's per-test folder, under
    the same options and names it uses for its own tests. The run folder keeps the originals."""
    run_dir = config.stash[STATE].run_dir
    attempt = attempt_folder(run_dir, result.cell_id, result.attempts)
    wanted: list[tuple[str, Path | None, str]] = [
        ("tracing", run_dir / result.trace_path if result.trace_path else None, "trace.zip"),
        ("video", attempt / "video.webm", "video.webm"),
        ("screenshot", run_dir / result.decisive.path if result.decisive else None, "test-finished-1.png"),
    ]
    copied = []
    for option, source, name in wanted:
        mode = str(_opt(config, option, "off") or "off")
        if source is None or not source.is_file() or mode == "off":
            continue
        # retain-on-failure, only-on-failure: the test fails or is broken exactly when the cell isn't as expected
        if mode != "on" and result.matches_expectation:
            continue
        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
        copied.append(folder / name)
    return copied


# -- fixtures for your own tests --------------------------------------------------------------------------------


class Authorize:
    """`authorize(user, account, scopes, optional=…)`: one install attempt through the hosted flow.

    Returns the cell's result, with its outcome, the screen's texts, screenshots (under `run_dir`) and, for
    a denial, the diagnosis. The attempt is not a matrix cell: it is not in the run's report.
    """

    def __init__(self, state: RunState, engine: Engine) -> None:
        self.state, self.engine = state, engine
        self.run_dir = state.run_dir

    def __call__(
        self, user: str, account: str, scopes: Sequence[str], optional: Sequence[str] = (), app: str | None = None
    ) -> CellResult:
        matrix = self.state.matrix
        known_users, known_accounts = {u.id for u in matrix.spec.users}, {a.id for a in matrix.spec.accounts}
        if user not in known_users:
            raise ValueError(f"unknown user {user!r}: use one of {sorted(known_users)} from {matrix.source}")
        if account not in known_accounts:
            raise ValueError(f"unknown account {account!r}: use one of {sorted(known_accounts)} from {matrix.source}")
        key = json.dumps([list(scopes), list(optional), app])
        scope_set = ScopeSetEntry(
            id="adhoc-" + hashlib.sha256(key.encode()).hexdigest()[:10],
            app=app,
            scopes=list(scopes),
            optional=list(optional),
        )
        return self.engine.run_unrecorded(Cell(matrix.user(user), matrix.account(account), scope_set))

    def storage_state(self, user: str) -> dict[str, object]:
        """The user's signed-in browser state, from the run's one login per user (or their saved login)."""
        state = self.engine.storage_state(user)
        if isinstance(state, LoginFailure):
            pytest.fail(f"{user} could not log in: {state.message}", pytrace=False)
        return state


@pytest.fixture(scope="session")
def sm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunState]:
    """The matrix run of this session, or, for a session of your own tests, one with every matrix user."""
    state = request.config.stash.get(STATE, None)
    if state is not None:
        yield state
        return
    try:
        own = _build_state(
            request.config, tmp_path_factory.mktemp("scopematrix"), _worker_input(request.config), everyone=True
        )
    except UsageError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    try:
        yield own
    finally:
        if own.engine is not None:
            own.engine.stop()
        if own.sim is not None:
            own.sim.stop()


@pytest.fixture(scope="session")
def sm_target(sm_run: RunState) -> Target:
    """Where the flow runs: the embedded simulator (default) or HubSpot (`--sm-target live`)."""
    return sm_run.target


@pytest.fixture(scope="session")
def authorize(request: pytest.FixtureRequest, sm_run: RunState) -> Authorize:
    return Authorize(sm_run, _engine(request.config, sm_run))


@pytest.fixture
def signed_in_context(new_context: Callable[..., Any], authorize: Authorize) -> Callable[[str], Any]:
    """`signed_in_context(user)`: a pytest-playwright context signed in as that matrix user (one login per
    user per session, shared with the matrix's cells)."""

    def make(user: str, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", authorize.state.target.app_url)  # page.goto("/") opens HubSpot's home
        return new_context(storage_state=authorize.storage_state(user), **kwargs)

    return make


@pytest.fixture
def signed_in_page(signed_in_context: Callable[[str], Any]) -> Callable[[str], Any]:
    """`signed_in_page(user)`: a new page in `signed_in_context(user)`."""

    def make(user: str) -> Any:
        return signed_in_context(user).new_page()

    return make


@pytest.hookimpl(trylast=True)
def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    """Right after pytest-playwright: our `browser_type_launch_args` then overrides its own, and any
    conftest.py (loaded later) can still override ours."""
    if getattr(plugin, "__name__", None) == "pytest_playwright.pytest_playwright" and not manager.has_plugin(
        "scopematrix.launch"
    ):
        manager.import_plugin("scopematrix.launch")
