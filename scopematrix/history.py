"""Run history in an embedded SQLite database (reports/history.sqlite): runs, cells, outcomes, diagnoses."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scopematrix.model import CellResult, Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, started_at TEXT, target TEXT, app TEXT, cells INTEGER, duration_s REAL,
  interrupted INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cells (
  run_id TEXT, cell_id TEXT, outcome TEXT, expected TEXT, heading TEXT, diagnosis TEXT,
  PRIMARY KEY (run_id, cell_id)
);
"""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: str
    target: str
    app: str
    cells: int
    duration_s: float
    interrupted: bool


class History:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def record(self, run: RunRow, results: Iterable[CellResult]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?)",
                (run.run_id, run.started_at, run.target, run.app, run.cells, run.duration_s, int(run.interrupted)),
            )
            self.db.execute("DELETE FROM cells WHERE run_id = ?", (run.run_id,))
            self.db.executemany(
                "INSERT INTO cells VALUES (?,?,?,?,?,?)",
                [
                    (
                        run.run_id,
                        r.cell_id,
                        r.outcome.value,
                        r.expected.value if r.expected else None,
                        r.heading,
                        json.dumps(r.to_dict()["diagnosis"]) if r.diagnosis else None,
                    )
                    for r in results
                ],
            )

    def runs(self, limit: int = 50) -> list[RunRow]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?", (limit,))
        return [RunRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def outcomes(self, run_id: str) -> dict[str, Outcome]:
        rows = self.db.execute("SELECT cell_id, outcome FROM cells WHERE run_id = ?", (run_id,))
        return {cid: outcome for cid, out in rows if (outcome := _outcome(out)) is not None}

    def previous_run(self, run_id: str, target: str) -> str | None:
        row = self.db.execute(
            "SELECT run_id FROM runs WHERE target = ? AND run_id < ? ORDER BY run_id DESC LIMIT 1", (target, run_id)
        ).fetchone()
        return str(row[0]) if row else None

    def trends(self, target: str, runs: int = 10) -> dict[str, list[Outcome]]:
        """Each cell's outcomes over the target's last `runs` runs, oldest first (one query)."""
        rows = self.db.execute(
            "SELECT c.cell_id, c.outcome FROM cells c JOIN "
            "(SELECT run_id FROM runs WHERE target = ? ORDER BY run_id DESC LIMIT ?) r ON r.run_id = c.run_id "
            "ORDER BY c.run_id",
            (target, runs),
        )
        out: dict[str, list[Outcome]] = {}
        for cell_id, value in rows:
            outcome = _outcome(value)
            if outcome is not None:
                out.setdefault(cell_id, []).append(outcome)
        return out


_WARNED: set[str] = set()


def _outcome(value: object) -> Outcome | None:
    """A history row's outcome; one this version doesn't know (a newer scopematrix, a hand edit) is skipped
    with one warning, never a lost report."""
    try:
        return Outcome(str(value))
    except ValueError:
        if str(value) not in _WARNED:
            _WARNED.add(str(value))
            sys.stderr.write(
                f"scopematrix: warning: run history has an unknown outcome {value!r}; those rows are skipped\n"
            )
        return None


def flips(before: dict[str, Outcome], after: dict[str, Outcome]) -> list[tuple[str, Outcome | None, Outcome | None]]:
    ids = sorted(set(before) | set(after))
    return [(i, before.get(i), after.get(i)) for i in ids if before.get(i) != after.get(i)]
