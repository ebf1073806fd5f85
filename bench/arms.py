"""The benchmark's arms, each run as its own process against the same simulator and the same browser binary:
the naive pytest-playwright suite, the tuned async script, `scopematrix run` with and without diagnosis,
and `scopematrix run` against drifted markup (a control that never enables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from scopematrix.flow import WalkPlan, authorize_url
from scopematrix.matrix import DEFAULT_MATRIX, Cell
from scopematrix.simulator.app import SimulatorApp
from scopematrix.simulator.scenario import DEFAULT_SCENARIO
from scopematrix.target import Target
from scopematrix.timeline import idle_fraction, read_spans

HERE = Path(__file__).parent
ROOT = HERE.parent
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_", "PYTEST_"))}


def busy_seconds() -> float:
    """Machine-wide non-idle CPU seconds so far (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def baseline_cells(target: Target, cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """What the hand-written arms get: each cell's authorize URL and its user's credentials, and for a scope
    set installed first by another user, that user's credentials and install URL."""
    out = []
    for c in cells:
        creds = target.credentials[c.user.id]
        url = authorize_url(target, WalkPlan.for_cell(c), True, "bench")
        cell: dict[str, Any] = {"id": c.id, "user": c.user.id, "app_url": target.app_url, "email": creds.email,
                                "password": creds.password, "totp": creds.totp_secret, "url": url}  # fmt: skip
        if c.scope_set.installed_by:
            who = target.credentials[c.scope_set.installed_by]
            app = target.apps[c.scope_set.app or target.main_app]
            cell["installer"] = {"user": c.scope_set.installed_by, "email": who.email, "password": who.password,
                                 "totp": who.totp_secret, "url": url, "redirect_uri": app.redirect_uri}  # fmt: skip
        out.append(cell)
    return out


def timed_process(name: str, command: list[str], env: dict[str, str] | None = None, ok: int = 0) -> dict[str, float]:
    """Run one arm as its own process: wall seconds, machine-wide CPU seconds, and the load before it."""
    load, busy, started = os.getloadavg()[0], busy_seconds(), time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env or CLEAN_ENV, capture_output=True, text=True, timeout=1200)
    wall, cpu = time.perf_counter() - started, busy_seconds() - busy
    if proc.returncode != ok:
        raise SystemExit(
            f"bench: the {name} arm exited {proc.returncode}, not {ok}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1m_before": round(load, 2)}


def run_stats(reports: Path, concurrency: int) -> dict[str, Any]:
    """Navigations, logins, probes and the timeline's idle fraction, from a harness run's own files."""
    run = next(reports.glob("run-*"))
    cells = json.loads((run / "results.json").read_text())["cells"]
    flows = [c["timings"].get("navigations", 0.0) for c in cells if c["outcome"] != "login_failed"]
    logins = sum(c["timings"].get("logins", 0.0) for c in cells)  # every login of the run is on some record
    login_navs = sum(c["timings"].get("login_navigations", 0.0) for c in cells)
    denied = [c for c in cells if c["outcome"] in ("denied_account", "denied_permissions", "needs_approval")]
    spans = read_spans(run)
    starts = [s.start for s in spans if s.kind == "cell"]
    return {"navigations_per_cell": round(sum(flows) / max(1, len(flows)), 3),
            "navigations_per_login": round(login_navs / max(1.0, logins), 2),
            "logins": int(logins), "users": len({c["user"] for c in cells}), "denied_cells": len(denied),
            "probes": sum(c["timings"].get("diagnosis_probes", 0.0) for c in denied),
            "diagnoses": sorted((c["cell_id"], (c.get("diagnosis") or {}).get("summary", "")) for c in denied),
            "outcomes": sorted((c["cell_id"], c["outcome"]) for c in cells),
            "idle_fraction": idle_fraction(spans, concurrency),
            "first_cell_at_s": round(min(starts), 2) if starts else None,
            "probe_walks": sum(1 for s in spans if s.kind == "probe")}  # fmt: skip


def drifted_files(workdir: Path) -> tuple[Path, Path]:
    """The default matrix through the account picker, and a scenario whose picker is rows plus a confirm
    button: the control the drifted markup never enables (pinned URLs and a picker of links skip it)."""
    doc = yaml.safe_load(DEFAULT_MATRIX.read_text())
    doc["pinned"] = False
    doc["baseline"] = None  # drifted cells are unrecognized by design: no expectation to compare with
    matrix = workdir / "drifted-matrix.yaml"
    matrix.write_text(yaml.safe_dump(doc, allow_unicode=True))
    world = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    world["switches"]["picker"] = "rows"
    scenario = workdir / "drifted-scenario.yaml"
    scenario.write_text(yaml.safe_dump(world, allow_unicode=True))
    return matrix, scenario


class Arms:
    """One call per arm and round; the bench interleaves them."""

    def __init__(
        self,
        workdir: Path,
        cells_file: Path,
        selection: list[str],
        server_url: str,
        app: SimulatorApp,
        drifted_url: str,
        browser: str,
        concurrency: int,
    ) -> None:
        self.workdir, self.cells_file, self.selection = workdir, cells_file, selection
        self.server_url, self.app, self.drifted_url = server_url, app, drifted_url
        self.browser, self.concurrency = browser, concurrency
        self.drifted_matrix, self.drifted_scenario = drifted_files(workdir)

    def naive(self) -> dict[str, Any]:
        command = [sys.executable, "-m", "pytest", str(HERE / "naive" / "test_naive.py"), "-q", "-o", "addopts=",
                   "-p", "no:cacheprovider", "--output", str(self.workdir / "naive-out"), "-W", "ignore"]  # fmt: skip
        return timed_process("naive", command, dict(CLEAN_ENV, SCOPEMATRIX_BENCH_CELLS=str(self.cells_file)))

    def tuned(self) -> dict[str, Any]:
        command = [sys.executable, "-m", "bench.tuned", str(self.cells_file), "--concurrency", str(self.concurrency),
                   "--browser", self.browser, "--out", str(self.workdir / "tuned-out")]  # fmt: skip
        timing = timed_process("tuned", command)
        # Its installs are real ones in the simulator's shared state (the harness installs in isolated
        # namespaces): undone, so that every round starts from the same world.
        httpx.post(self.server_url + "/__sim/reset", timeout=30).raise_for_status()
        return timing

    def harness(self, diagnose: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        reports = self.workdir / f"reports-{time.monotonic_ns()}"
        command = [sys.executable, "-m", "scopematrix.cli", "run", *self.selection, "--target-url", self.server_url,
                   "--reports", str(reports), "--quiet", *([] if diagnose else ["--no-diagnose"])]  # fmt: skip
        self.app.responses = 0
        timing = timed_process("diagnosis" if diagnose else "no-diagnose", command)
        return dict(timing, responses=self.app.responses), run_stats(reports, self.concurrency)

    def drifted(self) -> tuple[dict[str, Any], dict[str, Any]]:
        reports = self.workdir / f"reports-{time.monotonic_ns()}"
        command = [sys.executable, "-m", "scopematrix.cli", "run", *self.selection, "--matrix",
                   str(self.drifted_matrix), "--scenario", str(self.drifted_scenario), "--target-url",
                   self.drifted_url, "--reports", str(reports), "--quiet", "--no-diagnose"]  # fmt: skip
        timing = timed_process("drifted", command, ok=4)  # exit 4: unknown screens, the page objects need updating
        return timing, run_stats(reports, self.concurrency)
