"""Commands over finished runs: `report` (rebuild), `history`, `diff` and `merge` (shards into one run)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scopematrix.errors import UsageError

if TYPE_CHECKING:
    from scopematrix.history import History
    from scopematrix.model import CellResult


def cmd_report(args: argparse.Namespace) -> int:
    from scopematrix.engine import read_results
    from scopematrix.report.build import RunMeta, read_results_document, text_grid, write_report

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
    meta, results = read_results_document(source)
    out = write_report(source.parent, results, meta)
    print(text_grid(results))
    print(f"report: {out}")
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

    from scopematrix.engine import ResultSink
    from scopematrix.matrix import load_matrix
    from scopematrix.report.build import RunMeta, read_results_document
    from scopematrix.runs import PLAN, exit_code, finish, gather, missing_cells, new_run_id, read_ids, verdict_lines

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
    metas: list[RunMeta] = []
    planned: list[str] = []
    for run in runs:
        if (run / "results.json").is_file():
            metas.append(read_results_document(run / "results.json")[0])
        # A shard that never started (a configuration error) has no plan: its cells can't be known here.
        planned += read_ids(run / PLAN) if (run / PLAN).is_file() else []
    apps = {m.app for m in metas}
    if len(apps) > 1:
        raise UsageError(f"the shards ran different apps ({', '.join(sorted(apps))}).",
                         "merge shards of one matrix only.")  # fmt: skip
    absent = _absent_shards(runs)
    planned = list(dict.fromkeys([*planned, *(cid for _, cells in absent for cid in cells)]))
    merged = _merged_results(runs, gather)
    out.mkdir(parents=True, exist_ok=True)
    sink = ResultSink(out / "results-merged.jsonl")
    for result in merged:
        sink.append(result)
    for run in runs:
        for sub in ("cells", "logins", "allure-results"):
            if (run / sub).is_dir():
                shutil.copytree(run / sub, out / sub, dirs_exist_ok=True)
    first = metas[0] if metas else RunMeta("", "unknown", "", "", "", 0.0)
    meta = dataclasses.replace(
        first, run_id=out.name, started_at=min((m.started_at for m in metas), default=""),
        duration_s=max((m.duration_s for m in metas), default=0.0),
        interrupted=any(m.interrupted for m in metas), planned_cells=len(planned), command="scopematrix merge",
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
    for name, cells in absent:
        print(f"shard {name} was not given: its {len(cells)} cell(s) have no result")
    for line in verdict_lines(results, missing, broken):
        print(line)
    return exit_code(results, matrix.stale_expectations(), args.strict, missing, bool(without_plan))


def _absent_shards(runs: list[Path]) -> list[tuple[str, list[str]]]:
    """The shards (as "i/N") that the shard files say exist but that were not given, with their cells."""
    from scopematrix.runs import PLAN, read_ids, read_shard

    infos = {run: info for run in runs if (info := read_shard(run)) is not None}
    if not infos:
        return []
    plans = {(i.of, tuple(i.plan)) for i in infos.values()}
    if len(plans) > 1:
        raise UsageError("the shards were cut from different plans (their shard.json files differ).",
                         "merge the shards of one 'scopematrix run --shard i/N' series.")  # fmt: skip
    of, whole = next(iter(plans))
    given = {i.index for i in infos.values()}
    covered = {cid for run in infos if (run / PLAN).is_file() for cid in read_ids(run / PLAN)}
    left = [cid for cid in whole if cid not in covered]
    absent = [f"{i}/{of}" for i in range(1, of + 1) if i not in given]
    return [(", ".join(absent), left)] if absent and left else []


def _merged_results(runs: list[Path], gather: Callable[[Path], list[CellResult]]) -> list[CellResult]:
    """One result per cell. Copies that agree are one; a decision beats an outage (a shard re-run); two
    different decisions for one cell are refused, naming the cell: the merge can't know which is true."""
    by_id: dict[str, tuple[CellResult, Path]] = {}
    for run in runs:
        for result in gather(run):
            seen = by_id.get(result.cell_id)
            if seen is None or (seen[0].outcome.infrastructure and not result.outcome.infrastructure):
                by_id[result.cell_id] = (result, run)
            elif not result.outcome.infrastructure and seen[0].outcome is not result.outcome:
                raise UsageError(
                    f"cell {result.cell_id} is {seen[0].outcome.value} in {seen[1].name} but "
                    f"{result.outcome.value} in {run.name}.",
                    "rerun that cell and merge the shards of one series only.",
                )
    return [r for r, _ in by_id.values()]
