"""Finishing a run: gather every process's results, record history, write the report, pick the exit code."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from scopematrix import __version__
from scopematrix.engine import read_results
from scopematrix.history import History, RunRow
from scopematrix.matrix import Matrix, write_baseline
from scopematrix.model import CellResult
from scopematrix.report.build import RunMeta, text_grid, write_report

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


def new_run_id() -> str:
    return "run-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"scopematrix": __version__, "python": platform.python_version()}
    for pkg in ("playwright", "pytest"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing version is not worth failing a report for
            continue
    return out


def gather(run_dir: Path) -> list[CellResult]:
    return read_results(sorted(run_dir.glob("results-*.jsonl")))


def exit_code(results: Sequence[CellResult], stale: Sequence[str] = (), strict: bool = False) -> int:
    if any(not r.matches_expectation and not r.outcome.infrastructure for r in results):
        return EXIT_REGRESSION
    if strict and stale:
        return EXIT_REGRESSION
    if any(r.outcome.infrastructure for r in results):
        return EXIT_INFRA
    return EXIT_OK


def default_reason(r: CellResult) -> str:
    """Why a cell ends as it does, in words a reviewer of the baseline can check."""
    if r.outcome.installs:
        offered = set(r.granted_scopes or r.offered_scopes)
        dropped = [s for s in r.optional_scopes if s not in offered]
        return "installs" + (f"; optional not offered: {', '.join(dropped)}" if dropped else "")
    if r.diagnosis is not None:
        return r.diagnosis.summary
    return (r.message or r.heading)[:160]


def finish(
    run_dir: Path,
    meta: RunMeta,
    matrix: Matrix | None = None,
    update_baseline: bool = False,
) -> tuple[list[CellResult], str]:
    """Write everything for a run from its results files; returns the results and the text grid."""
    results = gather(run_dir)
    history = History(run_dir.parent / "history.sqlite")
    try:
        previous_id = history.previous_run(meta.run_id, meta.target)
        previous = history.outcomes(previous_id) if previous_id else {}
        history.record(
            RunRow(
                meta.run_id, meta.started_at, meta.target, meta.app, len(results), meta.duration_s, meta.interrupted
            ),
            results,
        )
        changes: dict[str, str] = {}
        for r in results:
            before = previous.get(r.cell_id)
            if previous_id and before is None:
                changes[r.cell_id] = "new cell"
            elif before is not None and before is not r.outcome:
                kind = "fixed" if r.outcome.installs else ("new screen" if r.outcome.infrastructure else "new failure")
                changes[r.cell_id] = f"{kind} (was {before.value})"
        trends = {cid: [o.value for o in seq] for cid, seq in history.trends(meta.target).items()}
    finally:
        history.close()
    write_report(run_dir, results, meta, changes, trends)
    if update_baseline and matrix is not None and matrix.baseline_path is not None:
        old = {e.cell: e for e in (matrix.baseline.expectations if matrix.baseline else [])}
        entries = []
        for r in results:
            if r.outcome.infrastructure:
                continue  # an outage is not an expectation
            entry = old.get(r.cell_id)
            kept = entry.reason if entry is not None and entry.outcome is r.outcome and entry.reason else ""
            entries.append((r.cell_id, r.outcome, kept or default_reason(r), entry.must_install if entry else False))
        write_baseline(matrix.baseline_path, entries)
    return results, text_grid(results)
