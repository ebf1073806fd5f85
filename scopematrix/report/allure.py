"""Allure's extra files for a run: categories, environment and executor, and each result's own duration."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scopematrix.model import CellResult
from scopematrix.report.build import RunMeta


def write_allure_extras(allure_dir: Path, meta: RunMeta) -> None:
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


def allure_durations(allure_dir: Path, results: Sequence[CellResult]) -> None:
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
