"""Finishing a run: gather every process's results, record history, write the report, pick the exit code."""

from __future__ import annotations

import json
import platform
import re
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from scopematrix import __version__
from scopematrix.config import Strict
from scopematrix.engine import read_results
from scopematrix.errors import UsageError
from scopematrix.history import History, RunRow
from scopematrix.matrix import Cell, Matrix, write_baseline
from scopematrix.model import CellResult, Outcome, validation_reason
from scopematrix.report.build import RunMeta, text_grid, write_report

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INFRA, EXIT_UNKNOWN_SCREEN = 0, 1, 2, 3, 4
PLAN = "plan.json"  # the cells a run set out to run, written before any of them starts
SHARD = "shard.json"  # written by `run --shard i/N`
PENDING = "pending.json"  # the cells this invocation runs (all of them, or what --resume left)
RUN_ID = re.compile(r"(run|check|diagnose)-[0-9A-Za-z._-]+")


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


def shard_by_user(cells: Sequence[Cell], index: int, shards: int) -> list[Cell]:
    """Shard `index` of `shards` (1-based): every cell of a user in one shard, so each user logs in once a
    night. Users go, largest first, to the shard with the fewest cells so far: the same split every time."""
    per_user: dict[str, list[Cell]] = {}
    for cell in cells:
        per_user.setdefault(cell.user.id, []).append(cell)
    load = [0] * shards
    mine: set[str] = set()
    for user, own in sorted(per_user.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        target = load.index(min(load))
        load[target] += len(own)
        if target == index - 1:
            mine.add(user)
    return [c for c in cells if c.user.id in mine]


class ShardInfo(Strict):
    """shard.json: which shard a run was (index of `of`) and the plan of all the shards together, so a merge
    can name the shards and cells it was not given."""

    index: int
    of: int
    plan: list[str]


def write_shard(run_dir: Path, index: int, of: int, plan: Sequence[str]) -> None:
    (run_dir / SHARD).write_text(ShardInfo(index=index, of=of, plan=list(plan)).model_dump_json(indent=0) + "\n")


def read_shard(run_dir: Path) -> ShardInfo | None:
    path = run_dir / SHARD
    if not path.is_file():
        return None
    try:
        info = ShardInfo.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise UsageError(f"{path}: not a shard file ({validation_reason(exc)}).",
                         "pass the run folders that 'scopematrix run --shard' wrote.") from None  # fmt: skip
    if not 1 <= info.index <= info.of:
        raise UsageError(f"{path}: shard {info.index}/{info.of} is out of range.",
                         "pass the run folders that 'scopematrix run --shard' wrote.")  # fmt: skip
    return info


def write_ids(path: Path, ids: Sequence[str]) -> None:
    """A plan file: a JSON list, so that any id round-trips (no splitting on whitespace)."""
    path.write_text(json.dumps(list(ids), indent=0) + "\n", encoding="utf-8")


def read_ids(path: Path) -> list[str]:
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"{path}: not a plan file.", "pass the plan.json a run wrote.") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise UsageError(f"{path}: not a list of cell ids.", "pass the plan.json a run wrote.")
    return ids


def missing_cells(planned: Sequence[str], results: Sequence[CellResult]) -> list[str]:
    done = {r.cell_id for r in results}
    return [cid for cid in planned if cid not in done]


def exit_code(
    results: Sequence[CellResult],
    stale: Sequence[str] = (),
    strict: bool = False,
    missing: Sequence[str] = (),
    broken: bool = False,
) -> int:
    """0 only when every planned cell has a result that matches its expectation.

    `missing`: planned cells without a result; `broken`: the runner itself failed (a pytest internal or
    usage error). Both are infrastructure trouble at least, never success.
    """
    if any(not r.matches_expectation and not r.outcome.infrastructure for r in results):
        return EXIT_REGRESSION
    if strict and stale:
        return EXIT_REGRESSION
    if any(r.outcome is Outcome.UNRECOGNIZED for r in results):
        return EXIT_UNKNOWN_SCREEN
    if missing or broken or any(r.outcome.infrastructure for r in results):
        return EXIT_INFRA
    return EXIT_OK


def verdict_lines(results: Sequence[CellResult], missing: Sequence[str], broken: str = "") -> list[str]:
    """The one-line reasons behind a non-zero exit that the grid doesn't show."""
    lines = []
    if broken:
        lines.append(f"runner failed: {broken}")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        lines.append(f"{len(missing)} planned cell(s) have no result: {shown}")
    unknown = [r for r in results if r.outcome is Outcome.UNRECOGNIZED]
    if unknown:
        first = next((r.html_path for r in unknown if r.html_path), "")
        lines.append(
            f"{len(unknown)} cell(s) ended on a screen no page object knows: the page objects need updating, "
            f"HubSpot is not down" + (f" (first: {first})" if first else "")
        )
    return lines


def default_reason(r: CellResult) -> str:
    """Why a cell ends as it does, in words a reviewer of the baseline can check."""
    if r.outcome.installs:
        evidence = r.granted_scopes if r.granted_scopes is not None else r.offered_scopes
        dropped = [s for s in r.optional_scopes if evidence is not None and s not in evidence]
        return "installs" + (f"; optional not offered: {', '.join(dropped)}" if dropped else "")
    if r.diagnosis is not None:
        return r.diagnosis.summary
    return (r.message or r.heading)[:160]


def _record_history(
    path: Path, meta: RunMeta, results: Sequence[CellResult]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    history = History(path)
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
    return changes, trends


def merge_baseline(matrix: Matrix, results: Sequence[CellResult], prune: bool = False) -> list[str]:
    """Update the baseline from a run without ever shrinking it by accident: the cells that ran and got a
    decision from HubSpot are set, every other expectation is kept, an outage or unknown screen is never
    recorded, and stale expectations (no matrix cell) go only with `prune`. Returns the lines to print."""
    assert matrix.baseline_path is not None
    old = {e.cell: e for e in (matrix.baseline.expectations if matrix.baseline else [])}
    entries = {cell: (e.outcome, e.reason, e.must_install) for cell, e in old.items()}
    added, changed = [], []
    for r in results:
        if r.outcome.infrastructure:
            continue  # an outage is not an expectation
        entry = old.get(r.cell_id)
        if entry is None:
            added.append(r.cell_id)
        elif entry.outcome is not r.outcome:
            changed.append(f"{r.cell_id}: {entry.outcome.value} -> {r.outcome.value}")
        kept = entry.reason if entry is not None and entry.outcome is r.outcome and entry.reason else ""
        entries[r.cell_id] = (r.outcome, kept or default_reason(r), entry.must_install if entry else False)
    stale = matrix.stale_expectations()
    if prune:
        for cell in stale:
            entries.pop(cell, None)
    write_baseline(matrix.baseline_path, [(cell, *rest) for cell, rest in entries.items()])
    lines = [f"baseline {matrix.baseline_path}: {len(added)} added, {len(changed)} changed, "
             f"{len(stale) if prune else 0} removed, {len(entries) - len(added)} kept"]  # fmt: skip
    lines += [f"  added: {c}" for c in added] + [f"  changed: {c}" for c in changed]
    if stale:
        verb = "removed" if prune else "stale, kept (pass --prune to remove)"
        lines += [f"  {verb}: {c}" for c in stale]
    return lines


def finish(
    run_dir: Path,
    meta: RunMeta,
    matrix: Matrix | None = None,
    update_baseline: bool = False,
    prune: bool = False,
) -> tuple[list[CellResult], str]:
    """Write everything for a run from its results files; returns the results and the text grid."""
    results = gather(run_dir)
    try:
        changes, trends = _record_history(run_dir.parent / "history.sqlite", meta, results)
    except (sqlite3.Error, OSError) as exc:
        # History is a nicety; the report is not: warn and carry on without it.
        sys.stderr.write(f"scopematrix: warning: run history not recorded ({exc}); the report is written without it\n")
        changes, trends = {}, {}
    write_report(run_dir, results, meta, changes, trends)
    if update_baseline and matrix is not None and matrix.baseline_path is not None:
        for line in merge_baseline(matrix, results, prune):
            sys.stdout.write(line + "\n")
    return results, text_grid(results)
