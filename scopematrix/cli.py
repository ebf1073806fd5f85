"""scopematrix's command line. Bad input gets one line naming the problem and the fix, and exit 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from scopematrix.errors import UsageError
from scopematrix.runs import EXIT_USAGE

if TYPE_CHECKING:
    from scopematrix.history import History
    from scopematrix.matrix import Cell, Matrix
    from scopematrix.model import CellResult
    from scopematrix.report.build import RunMeta

SUITE = Path(__file__).parent / "suite"
REPORTS = Path("reports")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}.", f"see '{self.prog} --help'.")


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number of at least 1")
    return int(value)


def _shard(value: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", value)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"'{value}' is not a shard like 1/3")
    return int(m.group(1)), int(m.group(2))


def _non_negative(value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not math.isfinite(out):
        raise argparse.ArgumentTypeError(f"'{value}' is not a finite number")
    if out < 0:
        raise argparse.ArgumentTypeError(f"'{value}' is negative")
    return out


def _positive(value: str) -> float:
    out = _non_negative(value)
    if out == 0:
        raise argparse.ArgumentTypeError(f"'{value}' must be more than 0")
    return out


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matrix", type=Path, help="matrix YAML (default fixtures/matrix.yaml)")
    p.add_argument("--scenario", type=Path, help="simulator scenario YAML (default fixtures/scenario.yaml)")
    p.add_argument("--target", choices=["sim", "live"], default="sim")
    p.add_argument("--app-url", help="HubSpot app URL for --target live (default https://app.hubspot.com)")
    p.add_argument("--api-url", help="HubSpot API URL for --target live (default https://api.hubapi.com)")
    p.add_argument("--env-file", type=Path, help="dotenv file with credentials (default .env if present)")
    p.add_argument("--user", action="append", default=[], help="only these users (glob; repeatable)")
    p.add_argument("--account", action="append", default=[], help="only these accounts (glob; repeatable)")
    p.add_argument("--scope-set", action="append", default=[], help="only these scope sets (glob; repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scopematrix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the matrix and write the report")
    _add_selection(run)
    run.add_argument("-n", "--workers", type=_positive_int, default=1, help="pytest-xdist worker processes")
    run.add_argument("--concurrency", type=_positive_int, default=4, help="browser contexts in flight per worker")
    run.add_argument("--approve", action="store_true", help="click through consent, exchange the code, revoke")
    run.add_argument("--no-diagnose", action="store_true", help="skip diagnosis of blocked cells")
    run.add_argument("--baseline", type=Path, help="expectations file (default: the matrix's baseline)")
    run.add_argument("--update-baseline", action="store_true", help="write this run's outcomes as expectations")
    run.add_argument("--strict", action="store_true", help="fail on stale baseline entries")
    run.add_argument("--shard", type=_shard, help="run shard i of N, e.g. 1/3")
    run.add_argument("--resume", metavar="RUN_ID", help="finish an interrupted run: only its missing cells")
    run.add_argument("--connect", metavar="WS_URL", help="use a remote Playwright browser server")
    run.add_argument("--remote-executable", metavar="PATH", help="browser binary on the server (run-server --unsafe)")
    run.add_argument("--headed", action="store_true")
    run.add_argument("--slowmo", type=_non_negative, default=0.0, help="milliseconds between actions")
    run.add_argument("--tracing", choices=["on", "off", "retain-on-failure"], default="off")
    run.add_argument("--timeout", type=_positive, help="per-action timeout in seconds")
    run.add_argument("--grace", type=_positive, help="seconds a screen may take to become recognisable")
    run.add_argument("--retries", type=int, default=1, choices=[0, 1, 2])
    run.add_argument("--latency", type=_non_negative, default=0.0, help="simulator: per-response latency in seconds")
    run.add_argument("--target-url", help="simulator: use one already running at this URL")
    run.add_argument("--reports", type=Path, default=REPORTS, help="reports folder (default reports/)")
    run.add_argument("--quiet", action="store_true")

    rep = sub.add_parser("report", help="rebuild a report from results.json or a run folder")
    rep.add_argument("source", type=Path)

    sim = sub.add_parser("sim", help="serve the embedded simulator")
    sim.add_argument("--scenario", type=Path)
    sim.add_argument("--port", type=int, default=0)
    sim.add_argument("--test-support", action="store_true", help="enable /__sim reset and fault switches")
    sim.add_argument("--latency", type=_non_negative, default=0.0)

    hist = sub.add_parser("history", help="list recorded runs")
    hist.add_argument("--reports", type=Path, default=REPORTS)

    diff = sub.add_parser("diff", help="cells whose outcome differs between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--reports", type=Path, default=REPORTS)

    merge = sub.add_parser("merge", help="merge shard run folders into one report")
    merge.add_argument("runs", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, help="merged run folder (default reports/<new run id>)")
    merge.add_argument("--matrix", type=Path, help="the matrix the shards ran (for stale expectations)")
    merge.add_argument("--strict", action="store_true", help="fail on stale baseline entries")
    merge.add_argument(
        "--all-cells",
        action="store_true",
        help="the shards together ran the whole matrix: any matrix cell without a result is missing",
    )

    diag = sub.add_parser("diagnose", help="diagnose one user x account x scope set")
    diag.add_argument("--user", required=True)
    diag.add_argument("--account", required=True)
    diag.add_argument("--scopes", required=True, help='space-separated, e.g. "forms content"')
    diag.add_argument("--optional", default="", help="space-separated optional scopes")
    diag.add_argument("--app", help="the app whose install URL to diagnose (default: the matrix's first)")
    for path_option in ("--matrix", "--scenario", "--env-file"):
        diag.add_argument(path_option, type=Path)
    diag.add_argument("--app-url")
    diag.add_argument("--api-url")
    diag.add_argument("--target", choices=["sim", "live"], default="sim")
    diag.add_argument("--reports", type=Path, default=REPORTS)

    check = sub.add_parser("check", help="before shipping a new scope: who could no longer install the app")
    check.add_argument("--add", default="", help='scopes to add to the install URL, e.g. "crm.objects.deals.write"')
    check.add_argument("--optional", default="", help="scopes to add as optional_scope")
    check.add_argument("--scopes", help="a whole candidate scope set instead of --add (space-separated)")
    check.add_argument("--base", help="the current scope set to compare with (default: the matrix's first)")
    check.add_argument("--target", choices=["sim", "live"], default="sim")
    check.add_argument("--concurrency", type=_positive_int, default=4)
    check.add_argument("--reports", type=Path, default=REPORTS)
    for path_option in ("--matrix", "--scenario", "--env-file"):
        check.add_argument(path_option, type=Path)
    check.add_argument("--app-url")
    check.add_argument("--api-url")

    login = sub.add_parser("login", help="log a user in with a headed browser and save the login state")
    login.add_argument("--user", required=True)
    login.add_argument("--out", type=Path, help="where to save it (default .auth/<user>.json)")
    login.add_argument("--matrix", type=Path)
    login.add_argument("--app-url")
    return parser


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _preflight(args: argparse.Namespace, matrix: Matrix, cells: list[Cell]) -> None:
    """Every check that needs no browser, before anything is written: bad input is one line and exit 2."""
    from scopematrix.browser import check_video
    from scopematrix.target import live_target, load_env

    env = load_env(args.env_file)
    users = matrix.users_needed(cells, not args.no_diagnose)
    if args.target == "live":
        live_target(matrix, env, users, args.app_url, args.api_url, matrix.apps_needed(cells, not args.no_diagnose))
    elif not args.target_url:
        from scopematrix.simtarget import sim_target
        from scopematrix.simulator.scenario import load_scenario

        sim_target(matrix, load_scenario(args.scenario), "http://127.0.0.1", users, env)
    if args.connect:
        _check_reachable(args.connect)
    else:
        _check_browser(headless=not args.headed)
        check_video(_passthrough_value(args.pytest, "--video"))


def _passthrough_value(pytest_args: list[str], flag: str) -> str | None:
    """The value of one of pytest's options among those passed through (`--flag v` or `--flag=v`)."""
    for i, arg in enumerate(pytest_args):
        if arg == flag and i + 1 < len(pytest_args):
            return pytest_args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _check_browser(headless: bool) -> None:
    from scopematrix.browser import ENV_OVERRIDE, find_browser

    if find_browser(headless=headless) is not None:
        return
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        raise UsageError(f"{ENV_OVERRIDE}={override} is not an executable browser.", "unset it or point it at Chrome.")
    raise UsageError("no Chromium found.", "run 'make setup' (or python -m scopematrix.browser).")


def _check_reachable(ws_url: str) -> None:
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--connect {ws_url!r} is not a ws:// URL.", "pass e.g. ws://127.0.0.1:3000/.")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise UsageError(
            f"--connect {ws_url}: nothing answers there ({exc.strerror or exc}).",
            "start 'playwright run-server' there, or correct the URL.",
        ) from None


def _run_dir(args: argparse.Namespace, matrix: Matrix) -> tuple[Path, list[str], list[Cell]]:
    """The run folder, the cells it plans, and the cells this invocation runs."""
    from scopematrix.runs import PLAN, RUN_ID, gather, new_run_id, read_ids, shard_by_user

    cells = matrix.select(args.user, args.account, args.scope_set)
    if args.shard:
        cells = shard_by_user(cells, *args.shard)
    reports: Path = args.reports
    if not args.resume:
        if not cells:  # a run that plans nothing would pass having tested nothing
            what = f"shard {args.shard[0]}/{args.shard[1]} gets no user" if args.shard else "no cell matches"
            raise UsageError(f"{what}: nothing to run.", "widen --user/--account/--scope-set, or use fewer shards.")
        return reports / new_run_id(), [c.id for c in cells], cells
    if not RUN_ID.fullmatch(args.resume) or ".." in args.resume:
        raise UsageError(f"--resume {args.resume!r} is not a run id.", "pass a run id from 'scopematrix history'.")
    run_dir = reports / args.resume
    if not (run_dir / PLAN).is_file():
        raise UsageError(f"run '{args.resume}' not found in {reports}/.", "see 'scopematrix history'.")
    planned = read_ids(run_dir / PLAN)  # the interrupted run's own selection, whatever filters are given now
    by_id = {c.id: c for c in matrix.cells()}
    unknown = [cid for cid in planned if cid not in by_id]
    if unknown:
        raise UsageError(f"run '{args.resume}' planned cell '{unknown[0]}', which the matrix no longer has.",
                         "resume with the matrix that run used, or start a new run.")  # fmt: skip
    done = {r.cell_id for r in gather(run_dir) if not r.outcome.infrastructure}
    return run_dir, planned, [by_id[cid] for cid in planned if cid not in done]


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from scopematrix.engine import prewarm
    from scopematrix.matrix import load_matrix
    from scopematrix.report.build import RunMeta, text_diagnoses
    from scopematrix.runs import (
        EXIT_INFRA,
        PENDING,
        PLAN,
        exit_code,
        finish,
        gather,
        missing_cells,
        read_ids,
        verdict_lines,
        versions,
        write_ids,
    )

    matrix = load_matrix(args.matrix, args.baseline)
    run_dir, planned, cells = _run_dir(args, matrix)
    _preflight(args, matrix, cells)
    if cells and args.workers <= 1:
        prewarm()  # Playwright's driver starts while pytest does (under xdist, each worker starts its own)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            write_ids(run_dir / PLAN, planned)
        write_ids(run_dir / PENDING, [c.id for c in cells])
    except OSError as exc:
        raise UsageError(
            f"report folder {run_dir} is not writable ({exc.strerror}).", "fix its permissions or pass --reports DIR."
        ) from None
    pytest_args = [
        str(SUITE / "test_matrix.py"), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
        # no:unraisableexception: its gc.collect() x5 at exit costs 0.2 s on the run's heap (warnings are off too).
        "-p", "no:randomly", "-p", "no:unraisableexception",
        "--sm-run-dir", str(run_dir), "--sm-cells", str(run_dir / PENDING),
        "--sm-target", args.target, "--sm-concurrency", str(args.concurrency), "--sm-retries", str(args.retries),
        "--alluredir", str(run_dir / "allure-results"),
        "-q" if not args.quiet else "-qq", "-p", "no:warnings", "--tracing", args.tracing,
        # pytest-playwright empties its --output folder at start: never the user's ./test-results.
        "--output", str(run_dir / "playwright-output"),
        # The suite has no assert to rewrite: skip parsing every plugin module at start (no .pyc cache where
        # PYTHONDONTWRITEBYTECODE is set).
        "--assert=plain",
        "-o", f"cache_dir={args.reports.resolve() / '.pytest_cache'}", "--sm-no-report", *args.pytest,
    ]  # fmt: skip
    if not args.resume:
        pytest_args += ["--sm-plan", str(run_dir / PLAN)]
    optional = {
        "--sm-matrix": args.matrix, "--sm-scenario": args.scenario, "--sm-app-url": args.app_url,
        "--sm-api-url": args.api_url, "--sm-env-file": args.env_file, "--sm-baseline": args.baseline,
        "--sm-connect": args.connect, "--sm-remote-executable": args.remote_executable,
        "--sm-grace": args.grace, "--sm-timeout": args.timeout,
        "--sm-target-url": args.target_url,
    }  # fmt: skip
    for flag, value in optional.items():
        if value is not None:
            pytest_args += [flag, str(value)]
    if args.latency:
        pytest_args += ["--sm-latency", str(args.latency)]
    for flag, on in (("--sm-approve", args.approve), ("--sm-no-diagnose", args.no_diagnose), ("--headed", args.headed)):
        if on:
            pytest_args.append(flag)
    if args.slowmo:
        pytest_args += ["--slowmo", str(args.slowmo)]
    if args.workers > 1:
        pytest_args += ["-n", str(args.workers), "--dist", "loadgroup"]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, _sigterm)
    interrupted, broken = False, ""
    try:
        rc = pytest.main(pytest_args) if cells else pytest.ExitCode.OK
        interrupted = rc == pytest.ExitCode.INTERRUPTED
        if rc in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
            broken = f"pytest ended with {pytest.ExitCode(rc).name}"
    except KeyboardInterrupt:
        interrupted = True
    previous = _previous_meta(run_dir) if args.resume else None
    meta = RunMeta(
        run_id=run_dir.name,
        target=args.target,
        target_url=args.app_url or ("embedded simulator" if args.target == "sim" else "https://app.hubspot.com"),
        app=", ".join(a.name for a in matrix.spec.apps),
        started_at=previous["started_at"] if previous else started,
        duration_s=round(time.monotonic() - t0 + (previous["duration_s"] if previous else 0.0), 2),
        versions=versions(),
        interrupted=interrupted,
        planned_cells=len(planned),
        command="scopematrix " + " ".join(sys.argv[2:]),
    )
    try:
        _write_allure_extras(run_dir / "allure-results", meta)
        results, grid = finish(run_dir, meta, matrix, args.update_baseline and not interrupted and not broken)
    except OSError as exc:  # a full disk: say so, keep what was written
        print(f"scopematrix: could not write the report in {run_dir} ({exc.strerror or exc}).", file=sys.stderr)
        return EXIT_INFRA
    _allure_durations(run_dir / "allure-results", results)
    if not args.resume and (run_dir / PLAN).is_file():
        planned = read_ids(run_dir / PLAN)  # what pytest selected (-k, -m, --lf narrow the plan)
    missing = missing_cells(planned, gather(run_dir))
    stale = matrix.stale_expectations()
    diagnoses = text_diagnoses(results)
    if diagnoses and not args.quiet:
        print(diagnoses)
    print(grid)
    if stale:
        print(f"stale expectations ({len(stale)}): " + ", ".join(stale))
    print(f"report: {run_dir / 'index.html'}")
    if interrupted:
        print(f"interrupted: resume with 'scopematrix run --resume {run_dir.name}'")
        return 130
    for line in verdict_lines(results, missing, broken):
        print(line)
    return exit_code(results, stale, args.strict, missing, bool(broken))


def _previous_meta(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    run: dict[str, Any] = json.loads(path.read_text())["run"]
    return run


def _allure_durations(allure_dir: Path, results: Sequence[CellResult]) -> None:
    """Give each Allure result its cell's own duration: the test body only waits for a cell that the engine
    ran concurrently, so the times allure-pytest measured are waits, not work."""
    by_cell = {(r.account, r.user, r.scope_set): r for r in results}
    for path in allure_dir.glob("*-result.json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            labels: dict[str, str] = {x["name"]: x["value"] for x in doc.get("labels", [])}
            r = by_cell.get((labels.get("parentSuite", ""), labels.get("suite", ""), labels.get("subSuite", "")))
            if r is None or not r.finished_at:
                continue
            stop = int(datetime.fromisoformat(r.finished_at).timestamp() * 1000)
            doc["start"], doc["stop"] = stop - int(r.duration_s * 1000), stop
            path.write_text(json.dumps(doc), encoding="utf-8")
        except (OSError, ValueError, KeyError, TypeError):
            continue


def _write_allure_extras(allure_dir: Path, meta: RunMeta) -> None:
    """categories.json (anchored on check_cell's messages), environment.properties and executor.json."""
    allure_dir.mkdir(parents=True, exist_ok=True)
    cats = [
        # allure-pytest puts the exception's type before the message.
        {"name": "Regression", "matchedStatuses": ["failed"], "messageRegex": r"(?s)([\w.]+: )?regression: .*"},
        {"name": "Unknown screen", "matchedStatuses": ["broken"], "messageRegex": r"(?s)([\w.]+: )?unknown screen: .*"},
        {"name": "Infrastructure", "matchedStatuses": ["broken"], "messageRegex": r"(?s)([\w.]+: )?infrastructure: .*"},
    ]
    (allure_dir / "categories.json").write_text(json.dumps(cats, indent=2), encoding="utf-8")
    env = {"target": meta.target, "target_url": meta.target_url, "app": meta.app, **meta.versions}
    lines = [f"{k.replace(' ', '_')}={v}" for k, v in env.items()]
    (allure_dir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    executor = {"name": "scopematrix", "type": "github" if os.environ.get("GITHUB_ACTIONS") else "local",
                "buildName": meta.run_id, "reportName": f"scopematrix: {meta.app}"}  # fmt: skip
    (allure_dir / "executor.json").write_text(json.dumps(executor, indent=2), encoding="utf-8")


def cmd_report(args: argparse.Namespace) -> int:
    from scopematrix.engine import read_results
    from scopematrix.model import CellResult
    from scopematrix.report.build import RunMeta, text_grid, write_report

    source: Path = args.source
    if source.is_dir():
        json_path = source / "results.json"
        if not json_path.is_file():
            results = read_results(sorted(source.glob("results-*.jsonl")))
            meta = RunMeta(source.name, "unknown", "", "", "", 0.0)
            print(text_grid(results))
            print(f"report: {write_report(source, results, meta)}")
            return 0
        source = json_path
    if not source.is_file():
        raise UsageError(f"{source}: not found.", "pass a results.json or a run folder.")
    try:
        doc = json.loads(source.read_text())
        results = [CellResult.from_dict(c) for c in doc["cells"]]
        meta = RunMeta(**doc["run"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{source}: not a scopematrix results.json.", "pass the results.json of a run.") from None
    out = write_report(source.parent, results, meta)
    print(text_grid(results))
    print(f"report: {out}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from scopematrix.simulator.app import create_app
    from scopematrix.simulator.scenario import load_scenario
    from scopematrix.simulator.server import SimServer
    from scopematrix.simulator.state import SimOptions

    scenario = load_scenario(args.scenario)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is out of range.", "use 0 (any free port) to 65535.")
    try:
        server = SimServer(
            create_app(scenario, SimOptions(test_support=args.test_support, latency_s=args.latency)), port=args.port
        ).start()
    except OSError as exc:
        raise UsageError(f"cannot listen on port {args.port} ({exc.strerror}).", "pick another --port.") from None
    print(f"simulator: {server.url}  (scenario {scenario.source}; Ctrl-C stops it)", flush=True)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_history(args: argparse.Namespace) -> int:

    path = args.reports / "history.sqlite"
    if not path.is_file():
        print("no runs recorded yet")
        return 0
    for run in _history(path).runs():
        flag = " (interrupted)" if run.interrupted else ""
        print(f"{run.run_id}  {run.started_at}  {run.target:5} {run.cells:5} cells  {run.duration_s:8.1f} s{flag}")
    return 0


def _history(path: Path) -> History:
    import sqlite3

    from scopematrix.history import History

    try:
        h = History(path)
        h.runs(limit=1)
    except sqlite3.Error as exc:
        raise UsageError(
            f"{path}: not a readable run history ({exc}).", "move it aside; the next run starts a new one."
        ) from None
    return h


def cmd_diff(args: argparse.Namespace) -> int:
    from scopematrix.history import flips

    path = args.reports / "history.sqlite"
    if not path.is_file():
        raise UsageError(f"{path} not found.", "run the matrix first.") from None
    h = _history(path)
    a, b = h.outcomes(args.run_a), h.outcomes(args.run_b)
    h.close()
    for rid, got in ((args.run_a, a), (args.run_b, b)):
        if not got:
            raise UsageError(f"run '{rid}' has no cells in history.", "see 'scopematrix history'.")
    changed = flips(a, b)
    for cid, before, after in changed:
        print(f"{cid}: {before.value if before else '-'} -> {after.value if after else '-'}")
    print(f"{len(changed)} cell(s) changed")
    return 1 if changed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    import shutil

    from scopematrix.engine import ResultSink, read_results
    from scopematrix.matrix import load_matrix
    from scopematrix.report.build import RunMeta
    from scopematrix.runs import PLAN, exit_code, finish, missing_cells, new_run_id, read_ids, verdict_lines

    runs: list[Path] = [r.resolve() for r in args.runs]
    for run in runs:
        if not run.is_dir():
            raise UsageError(f"{run}: not a run folder.", "pass the reports/<run-id> folders of the shards.")
    if len(set(runs)) != len(runs):
        raise UsageError("the same shard is given twice.", "pass each shard's run folder once.")
    out: Path = args.out or args.runs[0].parent / new_run_id()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists.", "pass a new folder for the merged run.")
    if out.resolve() in runs:
        raise UsageError(f"--out {out} is one of the shards.", "pass a new folder for the merged run.")
    metas, planned = [], []
    for run in runs:
        if (run / "results.json").is_file():
            metas.append(json.loads((run / "results.json").read_text(encoding="utf-8"))["run"])
        # A shard that never started (a configuration error) has no plan: its cells can't be known here.
        planned += read_ids(run / PLAN) if (run / PLAN).is_file() else []
    apps = {m.get("app") for m in metas}
    if len(apps) > 1:
        raise UsageError(f"the shards ran different apps ({', '.join(sorted(map(str, apps)))}).",
                         "merge shards of one matrix only.")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    sink = ResultSink(out / "results-merged.jsonl")
    for run in runs:
        for result in read_results(sorted(run.glob("results-*.jsonl"))):
            sink.append(result)
        for sub in ("cells", "logins", "allure-results"):
            if (run / sub).is_dir():
                shutil.copytree(run / sub, out / sub, dirs_exist_ok=True)
    first = metas[0] if metas else {}
    meta = RunMeta(
        run_id=out.name, target=first.get("target", "unknown"), target_url=first.get("target_url", ""),
        app=first.get("app", ""), started_at=min((m["started_at"] for m in metas), default=""),
        duration_s=max((m["duration_s"] for m in metas), default=0.0), versions=first.get("versions", {}),
        interrupted=any(m.get("interrupted") for m in metas),
        planned_cells=len(planned), command="scopematrix merge",
    )  # fmt: skip
    matrix = load_matrix(args.matrix)
    if args.all_cells:
        planned = list(dict.fromkeys([*planned, *(c.id for c in matrix.cells())]))
        meta = dataclasses.replace(meta, planned_cells=len(planned))
    results, grid = finish(out, meta, matrix)
    missing = missing_cells(planned, results)
    without_plan = [str(run) for run in runs if not (run / PLAN).is_file()]
    print(grid)
    print(f"report: {out / 'index.html'}")
    broken = f"shard(s) that never planned their cells: {', '.join(without_plan)}" if without_plan else ""
    for line in verdict_lines(results, missing, broken):
        print(line)
    return exit_code(results, matrix.stale_expectations(), args.strict, missing, bool(without_plan))


def cmd_diagnose(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from scopematrix.browser import find_browser
    from scopematrix.engine import BrowserOptions, Engine
    from scopematrix.flow import FlowOptions
    from scopematrix.matrix import Cell, ScopeSetEntry, load_matrix
    from scopematrix.runs import new_run_id
    from scopematrix.target import live_target, load_env

    matrix = load_matrix(args.matrix)
    user = next((u for u in matrix.spec.users if u.id == args.user), None)
    account = next((a for a in matrix.spec.accounts if a.id == args.account), None)
    if user is None or account is None:
        what = f"user '{args.user}'" if user is None else f"account '{args.account}'"
        raise UsageError(f"unknown {what}.", f"use an id from {matrix.source}.")
    if args.app is not None and args.app not in {a.id for a in matrix.spec.apps}:
        raise UsageError(f"unknown app '{args.app}'.", f"use one of: {', '.join(a.id for a in matrix.spec.apps)}.")
    try:
        scope_set = ScopeSetEntry(id="adhoc", app=args.app, scopes=args.scopes.split(), optional=args.optional.split())
    except ValidationError as exc:
        msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        problem, _, fix = msg.partition(" Fix: ")
        raise UsageError(f"--scopes: {problem}.", fix or "correct the scope names.") from None
    cell = Cell(user, account, scope_set)
    env = load_env(args.env_file)
    users = matrix.users_needed([cell])
    server = None
    if args.target == "live":
        target = live_target(matrix, env, users, args.app_url, args.api_url, matrix.apps_needed([cell]))
    else:
        from scopematrix.simtarget import sim_target, start_simulator

        server, scenario = start_simulator(args.scenario)
        target = sim_target(matrix, scenario, server.url, users, env)
    choice = find_browser(headless=True)
    run_dir = args.reports / ("diagnose-" + new_run_id())
    engine = Engine(
        target=target, matrix=matrix, run_dir=run_dir, run_id=run_dir.name, flow=FlowOptions(),
        browser=BrowserOptions(executable_path=choice.executable_path if choice else None), concurrency=2,
        diagnose=True, sink=None,
    )  # fmt: skip
    try:
        engine.start()
        result = engine.result(cell)
    finally:
        engine.stop()
        if server is not None:
            server.stop()
    print(f"{cell.id}: {result.outcome.value} ({result.heading})")
    d = result.diagnosis
    if d is None:
        print("no diagnosis: the cell is not blocked")
        return 0
    print(d.summary)
    print(f"blocking scopes: {', '.join(d.blocking_scopes) or '(none: installer-level)'}; probes: {d.probes}")
    for f in d.findings:
        print(f"  {f.scope}: {f.level}-level {('- ' + f.hint) if f.hint else ''}")
    for r in d.remedies:
        state = {True: "verified", False: "does not work", None: "not probed"}[r.verified]
        print(f"  fix ({r.kind}, {state}): {r.summary}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from scopematrix.check import run_check

    return run_check(args)


def cmd_login(args: argparse.Namespace) -> int:
    from scopematrix.login import save_login

    return save_login(args.user, args.out, args.matrix, args.app_url)


COMMANDS = {
    "run": cmd_run, "report": cmd_report, "sim": cmd_sim, "history": cmd_history, "diff": cmd_diff,
    "merge": cmd_merge, "diagnose": cmd_diagnose, "login": cmd_login, "check": cmd_check,
}  # fmt: skip


# pytest's own options that `scopematrix run` passes through (selection, stopping, verbosity, artifacts).
PYTEST_FLAGS = {"-x", "--exitfirst", "--lf", "--last-failed", "--ff", "--failed-first", "--sw", "--stepwise",
                "-v", "-vv", "--verbose", "--co", "--collect-only", "--full-page-screenshot"}  # fmt: skip
PYTEST_VALUED = {"-k", "-m", "--maxfail", "--screenshot", "--video", "--browser-channel"}


def _pytest_passthrough(extra: list[str]) -> list[str]:
    out, rest = [], list(extra)
    while rest:
        arg = rest.pop(0)
        name = arg.split("=", 1)[0]
        if name in PYTEST_FLAGS:
            out.append(arg)
        elif name in PYTEST_VALUED:
            if "=" in arg:
                out.append(arg)
            elif rest:
                out += [arg, rest.pop(0)]
            else:
                raise UsageError(f"{arg} needs a value.", "see 'scopematrix run --help' and 'pytest --help'.")
        else:
            raise UsageError(f"unrecognized argument {arg!r}.", "see 'scopematrix run --help'.")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra and args.command != "run":
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}.", f"see 'scopematrix {args.command} --help'.")
        args.pytest = _pytest_passthrough(extra)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scopematrix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
