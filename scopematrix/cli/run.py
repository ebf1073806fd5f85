"""`scopematrix run`: plan the cells, run them through pytest with the plugin, write the report, and exit with
what the plan and the results say."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scopematrix.cli.common import sigterm
from scopematrix.errors import UsageError
from scopematrix.preflight import preflight
from scopematrix.redact import Redactor

if TYPE_CHECKING:
    from scopematrix.matrix import Cell, Matrix

SUITE = Path(__file__).parents[1] / "suite"


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
    if not planned:
        raise UsageError(f"run '{args.resume}' planned no cell: there is nothing to resume.", "start a new run.")
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
    from scopematrix.report.allure import allure_durations, write_allure_extras
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
        write_shard,
    )

    if args.prune and not args.update_baseline:
        raise UsageError("--prune removes stale expectations while updating them.", "add --update-baseline.")
    matrix = load_matrix(args.matrix, args.baseline)
    run_dir, planned, cells = _run_dir(args, matrix)
    preflight(args, matrix, cells)
    if LISTING & set(args.pytest):
        return _listing(args, cells)
    if cells and args.workers <= 1:
        prewarm()  # Playwright's driver starts while pytest does (under xdist, each worker starts its own)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            write_ids(run_dir / PLAN, planned)
            if args.shard:  # the plan of every shard together, so that `merge` can name a missing one
                whole = matrix.select(args.user, args.account, args.scope_set)
                write_shard(run_dir, args.shard[0], args.shard[1], [c.id for c in whole])
        write_ids(run_dir / PENDING, [c.id for c in cells])
    except OSError as exc:
        raise UsageError(
            f"report folder {run_dir} is not writable ({exc.strerror}).", "fix its permissions or pass --reports DIR."
        ) from None
    pytest_args = [
        str(SUITE / "test_matrix.py"), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
        # no:unraisableexception: its gc.collect() x5 at exit costs 0.2 s on the run's heap (warnings are off too).
        # no:faker, no:anyio: the suite uses neither, and importing them took 60 ms of every start.
        "-p", "no:randomly", "-p", "no:unraisableexception", "-p", "no:faker", "-p", "no:anyio",
        "--sm-run-dir", str(run_dir), "--sm-cells", str(run_dir / PENDING),
        "--sm-concurrency", str(args.concurrency), "--sm-retries", str(args.retries),
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
    pytest_args += _target_options(args)
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
    signal.signal(signal.SIGTERM, sigterm)
    interrupted, broken = False, ""
    try:
        rc = pytest.main(pytest_args) if cells else pytest.ExitCode.OK
        interrupted = rc == pytest.ExitCode.INTERRUPTED
        if rc == pytest.ExitCode.USAGE_ERROR and not args.resume and not gather(run_dir):
            import shutil  # pytest refused an option before any cell ran: a usage error, and nothing kept

            shutil.rmtree(run_dir, ignore_errors=True)
            raise UsageError("pytest refused the options passed through (its message is above).",
                             "fix them; see 'scopematrix run --help' and 'pytest --help'.")  # fmt: skip
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
        command=Redactor()("scopematrix " + " ".join(sys.argv[2:])),  # a --connect URL may carry a token
    )
    try:
        write_allure_extras(run_dir / "allure-results", meta)
        update = args.update_baseline and not interrupted and not broken
        results, grid = finish(run_dir, meta, matrix, update, prune=args.prune)
    except OSError as exc:  # a full disk: say so, keep what was written
        kept = len(gather(run_dir))
        print(f"scopematrix: could not write the report in {run_dir} ({exc.strerror or exc}); {kept} finished "
              f"cell(s) are kept there: free space, then 'scopematrix report {run_dir}'.", file=sys.stderr)  # fmt: skip
        return EXIT_INFRA
    allure_durations(run_dir / "allure-results", results)
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


LISTING = {"--co", "--collect-only"}


def _target_options(args: argparse.Namespace) -> list[str]:
    """The plugin's options for what `scopematrix run` was told: the matrix, the target, the browser."""
    optional = {
        "--sm-matrix": args.matrix, "--sm-scenario": args.scenario, "--sm-app-url": args.app_url,
        "--sm-api-url": args.api_url, "--sm-env-file": args.env_file, "--sm-baseline": args.baseline,
        "--sm-connect": args.connect, "--sm-remote-executable": args.remote_executable,
        "--sm-grace": args.grace, "--sm-timeout": args.timeout,
        "--sm-target-url": args.target_url,
    }  # fmt: skip
    out = ["--sm-target", args.target]
    for flag, value in optional.items():
        if value is not None:
            out += [flag, str(value)]
    return out


def _listing(args: argparse.Namespace, cells: list[Cell]) -> int:
    """`scopematrix run --co`: pytest lists the cells it would run; no run folder, no report, exit 0."""
    import shutil
    import tempfile

    import pytest

    scratch = Path(tempfile.mkdtemp(prefix="scopematrix-list-"))
    try:
        from scopematrix.runs import write_ids

        write_ids(scratch / "cells.json", [c.id for c in cells])
        rc = pytest.main([
            str(SUITE / "test_matrix.py"), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
            "-p", "no:cacheprovider", "-p", "no:warnings", "--assert=plain",
            "--sm-run-dir", str(scratch), "--sm-cells", str(scratch / "cells.json"),
            "--sm-no-report", *_target_options(args), *args.pytest,
        ])  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    from scopematrix.runs import EXIT_USAGE

    return 0 if rc == pytest.ExitCode.OK else EXIT_USAGE


def _previous_meta(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    from scopematrix.report.build import read_results_document

    meta, _ = read_results_document(path)
    return {"started_at": meta.started_at, "duration_s": meta.duration_s}
