"""`explain` and `troubleshoot`: answers for support and customers, read from a finished run's results only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from scopematrix.errors import UsageError

if TYPE_CHECKING:
    from scopematrix.model import CellResult
    from scopematrix.report.build import RunMeta


def run_results(reports: Path, run: str | None) -> tuple[Path, RunMeta, list[CellResult]]:
    """A finished run's results.json: a run id under --reports, a run folder, or the latest run."""
    from scopematrix.report.build import read_results_document

    folder = Path(run) if run and Path(run).is_dir() else reports / (run or "latest")
    path = folder / "results.json"
    if not path.is_file():
        what = f"run '{run}'" if run else f"a latest run in {reports}/"
        raise UsageError(f"{what} has no results.json.", "run the matrix first, or pass a run id or folder.")
    meta, results = read_results_document(path)
    return folder, meta, results


def cmd_explain(args: argparse.Namespace) -> int:
    from scopematrix.answers.explain import explain, render_text

    _, meta, results = run_results(args.reports, args.run)
    answer = explain(results, args.role, args.products, args.app, args.scope_set, args.says,
                     (meta.run_id, meta.target, meta.started_at[:10]))  # fmt: skip
    print(answer.model_dump_json(indent=2) if args.json else render_text(answer))
    return 0 if answer.tested else 1


def cmd_troubleshoot(args: argparse.Namespace) -> int:
    from scopematrix.answers.troubleshoot import write_troubleshooting

    folder, meta, results = run_results(args.reports, args.run)
    out: Path = args.out or folder
    try:
        html, md = write_troubleshooting(out, results, meta)
    except OSError as exc:
        raise UsageError(f"cannot write to {out} ({exc.strerror or exc}).", "pass a writable --out folder.") from None
    print(f"troubleshooting page: {html}\nmarkdown: {md}")
    return 0
