"""Write a run's report from result records: results.json, results.csv, index.html and a text grid."""

from __future__ import annotations

import csv
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from scopematrix.errors import UsageError
from scopematrix.model import RESULTS_SCHEMA_VERSION, CellResult, Outcome, validation_reason
from scopematrix.report.junit import write_junit

# Okabe-Ito, a colour-blind-safe palette; every cell also carries its label as text.
COLOURS: dict[Outcome, tuple[str, str]] = {
    Outcome.GRANTED: ("#009E73", "#fff"),
    Outcome.GRANTED_PARTIAL: ("#56B4E9", "#000"),
    Outcome.NEEDS_APPROVAL: ("#F0E442", "#000"),
    Outcome.DENIED_PERMISSIONS: ("#E69F00", "#000"),
    Outcome.DENIED_ACCOUNT: ("#D55E00", "#fff"),
    Outcome.APP_MISCONFIGURED: ("#CC79A7", "#000"),
    Outcome.LOGIN_FAILED: ("#999999", "#000"),
    Outcome.UNRECOGNIZED: ("#0072B2", "#fff"),
    Outcome.ERROR: ("#000000", "#fff"),
}
SYMBOLS: dict[Outcome, str] = {
    Outcome.GRANTED: "OK",
    Outcome.GRANTED_PARTIAL: "ok~",
    Outcome.NEEDS_APPROVAL: "APPR",
    Outcome.DENIED_PERMISSIONS: "USER",
    Outcome.DENIED_ACCOUNT: "ACCT",
    Outcome.APP_MISCONFIGURED: "APP",
    Outcome.LOGIN_FAILED: "LOGIN",
    Outcome.UNRECOGNIZED: "??",
    Outcome.ERROR: "ERR",
}


@dataclass(frozen=True)
class RunMeta:
    run_id: str
    target: str
    target_url: str
    app: str
    started_at: str
    duration_s: float
    versions: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    planned_cells: int = 0
    command: str = ""


def sort_key(r: CellResult) -> tuple[str, str, str]:
    return (r.account, r.user, r.scope_set)


def rerun_command(r: CellResult, target: str) -> str:
    args = ["scopematrix", "run", "--user", r.user, "--account", r.account, "--scope-set", r.scope_set]
    if target != "sim":
        args += ["--target", target]
    return shlex.join(args)


def results_document(results: Sequence[CellResult], meta: RunMeta) -> dict[str, Any]:
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "run": asdict(meta),
        "summary": {o.value: n for o, n in counts(results).items()},
        "cells": [r.to_dict() for r in sorted(results, key=sort_key)],
    }


def read_results_document(path: Path) -> tuple[RunMeta, list[CellResult]]:
    """A results.json read back, validated (the run's header and every cell): one fixable line if it isn't."""
    from pydantic import TypeAdapter

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a scopematrix results.json ({exc}).",
                         "pass the results.json of a run.") from None  # fmt: skip
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list) or "run" not in doc:
        raise UsageError(f"{path}: not a scopematrix results.json (no 'run' and 'cells').",
                         "pass the results.json of a run.")  # fmt: skip
    try:
        meta = TypeAdapter(RunMeta).validate_python(doc["run"])
    except ValueError as exc:
        raise UsageError(f"{path}: run.{validation_reason(exc)}.", "pass the results.json a run wrote.") from None
    results = []
    for n, cell in enumerate(doc["cells"]):
        try:
            results.append(CellResult.from_dict(cell))
        except ValueError as exc:
            raise UsageError(f"{path}: cells[{n}].{validation_reason(exc)}.",
                             "pass the results.json a run wrote.") from None  # fmt: skip
    return meta, results


CSV_FIELDS = (
    "cell_id user role account hub_id scope_set outcome expected matches regression expectation_reason must_install "
    "heading message missing_permissions requested_scopes optional_scopes offered_scopes granted_scopes "
    "blocking_scopes attribution diagnosis remedies decisive_screenshot attempts duration_s"
).split()


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell Excel would run as a formula (=, +, -, @, a tab or CR first) is kept as text: a leading
    apostrophe, as OWASP advises against CSV injection. Numbers and booleans are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, fh: Any) -> None:
        self._w = csv.writer(fh)

    def writerow(self, row: Sequence[object]) -> None:
        self._w.writerow([csv_cell(v) for v in row])


def write_csv(path: Path, results: Sequence[CellResult]) -> None:
    """UTF-8 with a byte-order mark, so Excel reads "Couldn’t" as written; no cell is run as a formula."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        w = _SafeWriter(fh)
        w.writerow(CSV_FIELDS)
        for r in sorted(results, key=sort_key):
            d = r.diagnosis
            remedies = " | ".join(
                f"{x.summary} ({ {True: 'verified', False: 'does not work', None: 'not probed'}[x.verified] })"
                for x in (d.remedies if d else ())
            )
            w.writerow(
                [
                    r.cell_id, r.user, r.role, r.account, r.hub_id, r.scope_set, r.outcome.value,
                    r.expected.value if r.expected else "", r.matches_expectation, r.regression,
                    r.expectation_reason, r.must_install, r.heading, r.message, " ".join(r.missing_permissions),
                    " ".join(r.requested_scopes), " ".join(r.optional_scopes),
                    " ".join(r.offered_scopes) if r.offered_scopes is not None else "(not read)",
                    " ".join(r.granted_scopes or ()), " ".join(d.blocking_scopes) if d else "",
                    d.attribution if d else "", d.summary if d else "", remedies,
                    r.decisive.path if r.decisive else "", r.attempts, r.duration_s,
                ]
            )  # fmt: skip


def text_grid(results: Sequence[CellResult], width: int = 14) -> str:
    """The grid as text: one block per account, users as rows, scope sets as columns."""
    if not results:
        return "(no cells finished)"
    ordered = sorted(results, key=sort_key)
    scope_sets = list(dict.fromkeys(r.scope_set for r in ordered))
    by_key = {(r.account, r.user, r.scope_set): r for r in ordered}
    users_of: dict[str, dict[str, None]] = {}
    for r in ordered:
        users_of.setdefault(r.account, {})[r.user] = None
    lines: list[str] = []
    for account, users in users_of.items():
        uw = max(len(u) for u in users) + 1
        lines.append(f"[{account}]")
        lines.append(" " * uw + " ".join(s[:width].ljust(width) for s in scope_sets))
        for u in users:
            marks = []
            for s in scope_sets:
                hit = by_key.get((account, u, s))
                mark = "" if hit is None else SYMBOLS[hit.outcome] + ("" if hit.matches_expectation else "!")
                marks.append(mark.ljust(width))
            lines.append(u.ljust(uw) + " ".join(marks).rstrip())
        lines.append("")
    legend = "  ".join(f"{v}={k.value}" for k, v in SYMBOLS.items())
    return "\n".join([*lines, summary_line(results), "legend: " + legend + "  !=differs from expectation"])


def text_diagnoses(results: Sequence[CellResult]) -> str:
    """One line per diagnosed cell: the blocking scopes, who is at fault, the fixes that a probe verified."""
    lines = []
    for r in sorted(results, key=sort_key):
        d = r.diagnosis
        if d is None:
            continue
        fixes = [x.kind for x in d.remedies if x.verified]
        verified = f"; verified fix: {', '.join(fixes)}" if fixes else ""
        lines.append(f"  {r.cell_id}: {d.summary}{verified} ({d.probes} probes)")
    return "diagnoses:\n" + "\n".join(lines) if lines else ""


def summary_line(results: Sequence[CellResult]) -> str:
    parts = [f"{o.value}: {n}" for o, n in counts(results).items() if n]
    mism = [r for r in results if not r.matches_expectation]
    regressions = sum(1 for r in mism if r.regression)
    line = f"{len(results)} cells - " + ", ".join(parts) + f" - {len(mism)} differ from expectation"
    return line + (f" ({regressions} regression(s), {len(mism) - regressions} infrastructure)" if mism else "")


def local_link(path: str) -> str:
    """A link into the run folder, or "" for anything else (a crafted results.json could hold
    `javascript:` or remote URLs)."""
    parts = urlsplit(path)
    if not path or parts.scheme or parts.netloc or path.startswith(("/", "\\")) or ".." in Path(path).parts:
        return ""
    return path


def blocked_by(r: CellResult) -> str:
    """What the grid shows under a blocked cell: its blocking scopes, "installer", or the candidates."""
    d = r.diagnosis
    if d is None:
        return ""
    if d.blocking_scopes:
        return ", ".join(d.blocking_scopes)
    if d.attribution == "installer":
        return "installer"
    return f"among {', '.join(d.candidates)}" if d.candidates else "not isolated"


def _cell_view(r: CellResult, target: str, changes: dict[str, str], trends: dict[str, list[str]]) -> dict[str, Any]:
    d = r.to_dict()
    d["screenshots"] = [dict(c, path=local_link(c["path"])) for c in d["screenshots"] if local_link(c["path"])]
    d["html_path"], d["trace_path"] = local_link(r.html_path), local_link(r.trace_path)
    d["label"] = r.outcome.label
    d["rerun"] = rerun_command(r, target)
    d["decisive_path"] = local_link(r.decisive.path) if r.decisive else ""
    d["change"] = changes.get(r.cell_id, "")
    d["trend"] = trends.get(r.cell_id, [])
    d["matches"] = r.matches_expectation
    d["regression"] = r.regression
    d["why"] = blocked_by(r)
    d["url_note"] = "the embedded simulator's address during the run, not reachable now" if target == "sim" else ""
    d["bg"], d["fg"] = COLOURS[r.outcome]
    return d


def counts(results: Sequence[CellResult]) -> dict[Outcome, int]:
    tally = dict.fromkeys(Outcome, 0)
    for r in results:
        tally[r.outcome] += 1
    return tally


def write_html(
    path: Path,
    results: Sequence[CellResult],
    meta: RunMeta,
    changes: dict[str, str] | None = None,
    trends: dict[str, list[str]] | None = None,
) -> None:
    env = Environment(
        loader=PackageLoader("scopematrix.report", "templates"), autoescape=select_autoescape(default=True)
    )
    ordered = sorted(results, key=sort_key)
    cells = [_cell_view(r, meta.target, changes or {}, trends or {}) for r in ordered]
    grid = {(c["account"], c["user"], c["scope_set"]): c for c in cells}
    scope_sets = list(dict.fromkeys(r.scope_set for r in ordered))
    roles = {r.user: r.role for r in ordered}
    hubs = {r.account: r.hub_id for r in ordered}
    users_of: dict[str, dict[str, None]] = {}
    for r in ordered:
        users_of.setdefault(r.account, {})[r.user] = None
    blocks = [
        {
            "account": account,
            "hub_id": hubs[account],
            "rows": [
                {"user": u, "role": roles[u], "cells": [grid.get((account, u, s)) for s in scope_sets]} for u in users
            ],
        }
        for account, users in users_of.items()
    ]
    tally = counts(ordered)
    html = env.get_template("index.html.j2").render(
        meta=asdict(meta),
        blocks=blocks,
        scope_sets=scope_sets,
        users=sorted(roles),
        accounts=list(users_of),
        cells=cells,
        outcomes=[
            {"value": o.value, "label": o.label, "bg": COLOURS[o][0], "fg": COLOURS[o][1], "count": tally[o]}
            for o in Outcome
        ],
        regressions=sum(1 for r in ordered if r.regression),
        unknown=sum(1 for r in ordered if r.outcome is Outcome.UNRECOGNIZED and not r.matches_expectation),
        infrastructure=sum(1 for r in ordered if r.outcome is Outcome.ERROR and not r.matches_expectation),
        total=len(ordered),
    )
    path.write_text(html, encoding="utf-8")


def write_report(
    run_dir: Path,
    results: Sequence[CellResult],
    meta: RunMeta,
    changes: dict[str, str] | None = None,
    trends: dict[str, list[str]] | None = None,
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    doc = results_document(results, meta)
    tmp = run_dir / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False), encoding="utf-8")
    tmp.replace(run_dir / "results.json")
    write_csv(run_dir / "results.csv", results)
    write_junit(run_dir / "junit.xml", results, meta.run_id, meta.started_at)
    write_html(run_dir / "index.html", results, meta, changes, trends)
    (run_dir / "summary.txt").write_text(text_grid(results) + "\n", encoding="utf-8")
    latest = run_dir.parent / "latest"
    try:
        if latest.is_symlink():  # ours: a link to a run folder; a file or folder of that name is the user's
            latest.unlink()
        if not latest.exists():
            os.symlink(run_dir.name, latest)
    except OSError:
        pass
    return run_dir / "index.html"
