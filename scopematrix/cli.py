"""scopematrix's command line. Bad input gets one line naming the problem and the fix, and exit 2."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from scopematrix.errors import UsageError
from scopematrix.runs import EXIT_USAGE

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
    if out < 0:
        raise argparse.ArgumentTypeError(f"'{value}' is negative")
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
    run.add_argument("--timeout", type=_non_negative, help="per-action timeout in seconds")
    run.add_argument("--grace", type=_non_negative, help="seconds a screen may take to become recognisable")
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

    diag = sub.add_parser("diagnose", help="diagnose one user x account x scope set")
    diag.add_argument("--user", required=True)
    diag.add_argument("--account", required=True)
    diag.add_argument("--scopes", required=True, help='space-separated, e.g. "forms content"')
    diag.add_argument("--optional", default="", help="space-separated optional scopes")
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


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from scopematrix.matrix import load_matrix
    from scopematrix.report.build import RunMeta, text_diagnoses
    from scopematrix.runs import exit_code, finish, new_run_id, versions

    matrix = load_matrix(args.matrix, args.baseline)
    cells = selected = matrix.select(args.user, args.account, args.scope_set)
    if args.shard:
        i, n = args.shard
        cells = selected = [c for k, c in enumerate(cells) if k % n == i - 1]
    reports: Path = args.reports
    if args.resume:
        run_dir = reports / args.resume
        if not run_dir.is_dir():
            raise UsageError(f"run '{args.resume}' not found in {reports}/.", "see 'scopematrix history'.")
        from scopematrix.runs import gather

        planned = run_dir / "cells.txt"
        if planned.is_file():  # the interrupted run's own selection, whatever filters are given now
            wanted = planned.read_text().split()
            by_id = {c.id: c for c in matrix.cells()}
            cells = selected = [by_id[cid] for cid in wanted if cid in by_id]
        done = {r.cell_id for r in gather(run_dir) if not r.outcome.infrastructure}
        cells = [c for c in cells if c.id not in done]
    else:
        run_dir = reports / new_run_id()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"report folder {run_dir} is not writable ({exc.strerror}).", "fix its permissions or pass --reports DIR."
        ) from None
    if not args.resume:
        (run_dir / "cells.txt").write_text("\n".join(c.id for c in cells) + "\n")
    pending = run_dir / "pending.txt"
    pending.write_text("\n".join(c.id for c in cells) + "\n")
    if args.target == "live":  # fail on missing credentials before any browser starts
        from scopematrix.target import live_target, load_env

        live_target(
            matrix,
            load_env(args.env_file),
            matrix.users_needed(cells, not args.no_diagnose),
            args.app_url,
            args.api_url,
        )
    pytest_args = [
        str(SUITE / "test_matrix.py"), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
        "-p", "scopematrix.plugin", "-p", "no:randomly",
        "--sm-run-dir", str(run_dir), "--sm-cells", str(pending),
        "--sm-target", args.target, "--sm-concurrency", str(args.concurrency), "--sm-retries", str(args.retries),
        "--junitxml", str(run_dir / "junit.xml"), "--alluredir", str(run_dir / "allure-results"),
        "-q" if not args.quiet else "-qq", "-p", "no:warnings", "--tracing", args.tracing,
    ]  # fmt: skip
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
    interrupted = False
    try:
        rc = pytest.main(pytest_args) if cells else 0
        interrupted = rc == pytest.ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        interrupted = True
    _write_categories(run_dir / "allure-results")
    previous = _previous_meta(run_dir) if args.resume else None
    meta = RunMeta(
        run_id=run_dir.name,
        target=args.target,
        target_url=args.app_url or ("embedded simulator" if args.target == "sim" else "https://app.hubspot.com"),
        app=matrix.app.name,
        started_at=previous["started_at"] if previous else started,
        duration_s=round(time.monotonic() - t0 + (previous["duration_s"] if previous else 0.0), 2),
        versions=versions(),
        interrupted=interrupted,
        planned_cells=len(selected),
        command="scopematrix " + " ".join(sys.argv[2:]),
    )
    results, grid = finish(run_dir, meta, matrix, args.update_baseline and not interrupted)
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
    return exit_code(results, stale, args.strict)


def _previous_meta(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    run: dict[str, Any] = json.loads(path.read_text())["run"]
    return run


def _write_categories(allure_dir: Path) -> None:
    from scopematrix.model import Outcome

    allure_dir.mkdir(parents=True, exist_ok=True)
    cats = [
        {
            "name": f"Outcome: {o.label}",
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": f".*outcome={o.value}.*",
        }
        for o in Outcome
    ]
    (allure_dir / "categories.json").write_text(json.dumps(cats, indent=2))


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
    from scopematrix.history import History

    path = args.reports / "history.sqlite"
    if not path.is_file():
        print("no runs recorded yet")
        return 0
    h = History(path)
    for run in h.runs():
        flag = " (interrupted)" if run.interrupted else ""
        print(f"{run.run_id}  {run.started_at}  {run.target:5} {run.cells:5} cells  {run.duration_s:8.1f} s{flag}")
    h.close()
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from scopematrix.history import History, flips

    path = args.reports / "history.sqlite"
    if not path.is_file():
        raise UsageError(f"{path} not found.", "run the matrix first.")
    h = History(path)
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
    from scopematrix.runs import exit_code, finish, new_run_id

    for run in args.runs:
        if not run.is_dir():
            raise UsageError(f"{run}: not a run folder.", "pass the reports/<run-id> folders of the shards.")
    out: Path = args.out or args.runs[0].parent / new_run_id()
    out.mkdir(parents=True, exist_ok=True)
    sink = ResultSink(out / "results-merged.jsonl")
    metas = []
    for n, run in enumerate(args.runs, 1):
        for result in read_results(sorted(run.glob("results-*.jsonl"))):
            sink.append(result)
        for sub in ("cells", "logins", "allure-results"):
            if (run / sub).is_dir():
                shutil.copytree(run / sub, out / sub, dirs_exist_ok=True)
        if (run / "junit.xml").is_file():
            shutil.copy(run / "junit.xml", out / f"junit-{n}.xml")
        if (run / "results.json").is_file():
            metas.append(json.loads((run / "results.json").read_text())["run"])
    first = metas[0] if metas else {}
    meta = RunMeta(
        run_id=out.name, target=first.get("target", "unknown"), target_url=first.get("target_url", ""),
        app=first.get("app", ""), started_at=min((m["started_at"] for m in metas), default=""),
        duration_s=max((m["duration_s"] for m in metas), default=0.0), versions=first.get("versions", {}),
        interrupted=any(m.get("interrupted") for m in metas),
        planned_cells=sum(m.get("planned_cells", 0) for m in metas), command="scopematrix merge",
    )  # fmt: skip
    matrix = load_matrix(args.matrix)
    results, grid = finish(out, meta, matrix)
    print(grid)
    print(f"report: {out / 'index.html'}")
    return exit_code(results, matrix.stale_expectations(), args.strict)


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
    try:
        scope_set = ScopeSetEntry(id="adhoc", scopes=args.scopes.split(), optional=args.optional.split())
    except ValidationError as exc:
        msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        problem, _, fix = msg.partition(" Fix: ")
        raise UsageError(f"--scopes: {problem}.", fix or "correct the scope names.") from None
    cell = Cell(user, account, scope_set)
    env = load_env(args.env_file)
    users = matrix.users_needed([cell])
    server = None
    if args.target == "live":
        target = live_target(matrix, env, users, args.app_url, args.api_url)
    else:
        from scopematrix.simtarget import sim_target, start_simulator

        server, scenario = start_simulator(args.scenario)
        target = sim_target(matrix, scenario, server.url, users, env)
    choice = find_browser()
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scopematrix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
