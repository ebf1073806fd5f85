"""Nightly CI and pre-release checks: exit codes, baselines, history, shards + merge, the nightly, `check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scopematrix.matrix import DEFAULT_MATRIX, load_matrix
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import DEFAULT_SCENARIO
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import Fault, SimOptions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
ONE_USER = ["--user", "super-admin", "--account", "free", "--no-diagnose"]  # 7 cells, one login


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip


def outcomes(run_dir: Path) -> dict[str, str]:
    return {c["cell_id"]: c["outcome"] for c in json.loads((run_dir / "results.json").read_text())["cells"]}


def report_of(proc: subprocess.CompletedProcess[str]) -> Path:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("report: "))
    return (ROOT / line.removeprefix("report: ")).parent


def test_exit_codes_regressions_history_and_diff(tmp_path):
    reports = tmp_path / "reports"
    ok = cli("run", *ONE_USER, "--reports", str(reports))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # HubSpot changes: the free account gains Marketing Professional, so denied cells now install.
    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    doc["accounts"][0]["tiers"] = {"marketing": "professional"}
    changed = tmp_path / "scenario.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True))
    flipped = cli("run", *ONE_USER, "--reports", str(reports), "--scenario", str(changed))
    assert flipped.returncode == 1, flipped.stdout
    assert "OK!" in flipped.stdout and "2 differ from expectation" in flipped.stdout  # "!" marks them
    runs = cli("history", "--reports", str(reports))
    ids = [line.split()[0] for line in runs.stdout.splitlines()]
    assert len(ids) == 2
    diff = cli("diff", ids[1], ids[0], "--reports", str(reports))
    assert diff.returncode == 1 and "super-admin@free/seed-app: denied_account -> granted" in diff.stdout
    html = (report_of(flipped) / "index.html").read_text()
    assert "fixed (was denied_account)" in html


def test_infrastructure_trouble_alone_exits_3(tmp_path, scenario):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/", "5xx")])
    with SimServer(create_app(scenario, options)) as server:
        proc = cli("run", *ONE_USER, "--scope-set", "crm-read", "--reports", str(tmp_path), "--target-url", server.url)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "ERR" in proc.stdout


def test_baseline_update_and_stale_entries(tmp_path):
    matrix = yaml.safe_load(DEFAULT_MATRIX.read_text())
    matrix["baseline"] = "baseline.yaml"
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(matrix, allow_unicode=True))
    stale = {"version": 1, "expectations": [{"cell": "ghost@nowhere/none", "outcome": "granted", "reason": "old"}]}
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump(stale))
    args = ["run", *ONE_USER, "--scope-set", "crm-read", "--scope-set", "seed-app", "--matrix",
            str(tmp_path / "matrix.yaml"), "--reports", str(tmp_path / "r")]  # fmt: skip
    lenient = cli(*args)
    assert lenient.returncode == 0 and "stale expectations (1): ghost@nowhere/none" in lenient.stdout
    assert cli(*args, "--strict").returncode == 1
    updated = cli(*args, "--update-baseline")
    assert updated.returncode == 0
    assert "2 added, 0 changed, 0 removed, 1 kept" in updated.stdout
    assert "stale, kept (pass --prune to remove): ghost@nowhere/none" in updated.stdout
    written = yaml.safe_load((tmp_path / "baseline.yaml").read_text())["expectations"]
    by_cell = {e["cell"]: e for e in written}
    assert "ghost@nowhere/none" in by_cell  # never removed by accident
    assert by_cell["super-admin@free/seed-app"]["outcome"] == "denied_account"
    assert by_cell["super-admin@free/crm-read"] == {
        "cell": "super-admin@free/crm-read",
        "outcome": "granted",
        "reason": "installs",
    }
    pruned = cli(*args, "--update-baseline", "--prune")
    assert pruned.returncode == 0 and "removed: ghost@nowhere/none" in pruned.stdout
    written = yaml.safe_load((tmp_path / "baseline.yaml").read_text())["expectations"]
    assert {e["cell"] for e in written} == {"super-admin@free/crm-read", "super-admin@free/seed-app"}


def test_updating_the_baseline_from_one_cell_or_an_outage_keeps_every_other_expectation(tmp_path, scenario):
    """Before, a one-cell run rewrote the baseline with its one cell; an outage deleted its cells' expectations."""
    matrix = yaml.safe_load(DEFAULT_MATRIX.read_text())
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(matrix, allow_unicode=True))
    (tmp_path / "baseline.yaml").write_text((DEFAULT_MATRIX.parent / "baseline.yaml").read_text())
    before = yaml.safe_load((tmp_path / "baseline.yaml").read_text())["expectations"]
    one = ["run", "--user", "super-admin", "--account", "free", "--scope-set", "crm-read", "--no-diagnose",
           "--matrix", str(tmp_path / "matrix.yaml"), "--reports", str(tmp_path / "r"),
           "--update-baseline"]  # fmt: skip
    assert cli(*one).returncode == 0
    after = yaml.safe_load((tmp_path / "baseline.yaml").read_text())["expectations"]
    assert len(after) == len(before) >= 100
    with SimServer(create_app(scenario, SimOptions(test_support=True, faults=[Fault("/oauth/", "5xx")]))) as server:
        down = cli(*one[:-1], "--scope-set", "seed-app", "--target-url", server.url, "--update-baseline")
    assert down.returncode == 3
    assert yaml.safe_load((tmp_path / "baseline.yaml").read_text())["expectations"] == after
    assert "0 added, 0 changed, 0 removed" in down.stdout


def test_shards_merged_equal_a_single_run(tmp_path):
    select = ["--user", "admin-marketplace", "--user", "super-admin", "--account", "free", "--no-diagnose",
              "--reports", str(tmp_path)]  # fmt: skip
    single = cli("run", *select)
    one = cli("run", *select, "--shard", "1/2")
    two = cli("run", *select, "--shard", "2/2")
    assert {single.returncode, one.returncode, two.returncode} == {0}, single.stdout
    a, b = outcomes(report_of(one)), outcomes(report_of(two))
    assert a and b and not set(a) & set(b)
    users = [{cid.split("@")[0] for cid in shard} for shard in (a, b)]
    assert len(users[0]) == len(users[1]) == 1 and not users[0] & users[1]  # a user's cells stay in one shard
    merged = cli("merge", str(report_of(one)), str(report_of(two)), "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert outcomes(tmp_path / "merged") == outcomes(report_of(single))
    assert (tmp_path / "merged" / "index.html").is_file()
    alone = cli("merge", str(report_of(one)), "--out", str(tmp_path / "alone"))  # shard 2/2 forgotten
    assert alone.returncode == 3, alone.stdout + alone.stderr
    assert f"shard 2/2 was not given: its {len(b)} cell(s) have no result" in alone.stdout


def test_check_names_the_combinations_a_new_scope_would_break(tmp_path):
    matrix = yaml.safe_load(DEFAULT_MATRIX.read_text())
    matrix["users"] = [u for u in matrix["users"] if u["id"] in ("super-admin", "sales-admin")]
    matrix["baseline"] = "baseline.yaml"
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(matrix, allow_unicode=True))
    must = {"cell": "super-admin@free/crm-read", "outcome": "granted", "reason": "core", "must_install": True}
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump({"version": 1, "expectations": [must]}))
    common = ["check", "--matrix", str(tmp_path / "matrix.yaml"), "--reports", str(tmp_path / "r")]
    breaking = cli(*common, "--add", "automation")
    assert breaking.returncode == 1, breaking.stdout + breaking.stderr
    assert "NEWLY FAILS [must install]: super-admin@free: granted -> denied_account" in breaking.stdout
    assert "sales-admin@marketing-pro: granted -> denied_permissions: Blocked by automation (user-level)" in (
        breaking.stdout
    )
    harmless = cli(*common, "--add", "crm.objects.deals.write")
    assert harmless.returncode == 0 and "0 combination(s) would newly fail" in harmless.stdout


def test_check_rejects_an_unknown_scope_in_one_line():
    proc = cli("check", "--add", "crm.objects.deal.write")
    assert proc.returncode == 2 and "did you mean 'crm.objects.deals.write'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_nightly_workflow_runs_the_whole_matrix_in_one_job_and_reads_every_secret():
    flow = yaml.safe_load((ROOT / ".github/workflows/nightly.yml").read_text())
    triggers = flow[True] if True in flow else flow["on"]  # YAML reads a bare `on:` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert list(flow["jobs"]) == ["matrix"]  # one job: a login is never needed twice in a night
    script = _step(flow, "matrix", "Run the matrix")
    assert "scopematrix run" in script and "--shard" not in script
    example = (ROOT / ".env.example").read_text()
    names = {line.split("=")[0].lstrip("# ").strip() for line in example.splitlines() if "=" in line}
    names.discard("SCOPEMATRIX_CHROMIUM")
    names.discard("SCOPEMATRIX_API_URL")
    assert names <= set(flow["env"]), names - set(flow["env"])


def _step(flow: dict, job: str, name: str) -> str:
    return next(step["run"] for step in flow["jobs"][job]["steps"] if step.get("name") == name)


def _nightly(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The workflow's own "Run the matrix" script, as written, in a fresh checkout-like folder."""
    flow = yaml.safe_load((ROOT / ".github/workflows/nightly.yml").read_text())
    if not (tmp_path / ".venv").exists():
        (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    return subprocess.run(["bash", "-c", _step(flow, "matrix", "Run the matrix")], cwd=tmp_path,
                          env={**base, **env}, capture_output=True, text=True, timeout=900)  # fmt: skip


def test_the_nightly_as_written_logs_each_user_in_once_and_passes_only_on_every_cell(tmp_path):
    proc = _nightly(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = json.loads((tmp_path / "reports/latest/results.json").read_text())["cells"]
    assert {c["cell_id"] for c in cells} == {c.id for c in load_matrix().cells()}  # every cell, with diagnosis
    logins = sum(c["timings"].get("logins", 0) for c in cells)  # every login the run made is on some record
    assert logins == len({c["user"] for c in cells}) == 7  # one login per matrix user, in the whole night


def test_the_nightly_as_written_is_red_on_a_configuration_error_and_writes_nothing(tmp_path):
    proc = _nightly(tmp_path, SCOPEMATRIX_CLIENT_SECRET="only-one-of-the-secrets")  # looks for live secrets
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "reports").exists()


def test_pytest_habits_pass_through_and_the_plan_is_what_pytest_selected(tmp_path):
    """-k narrows the plan (still exit 0), --lf reruns only what failed, -x stops and is never green."""
    reports = tmp_path / "r"
    picked = cli("run", "-k", "super-admin and seed", "--no-diagnose", "--reports", str(reports))
    assert picked.returncode == 0, picked.stdout + picked.stderr
    assert sorted(json.loads((report_of(picked) / "plan.json").read_text())) == [
        "super-admin@enterprise/seed-app", "super-admin@free/seed-app", "super-admin@marketing-pro/seed-app"
    ]  # fmt: skip
    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    doc["accounts"][0]["tiers"] = {"marketing": "professional"}  # two free-account cells now install
    changed = tmp_path / "scenario.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True))
    select = [*ONE_USER, "--scenario", str(changed), "--reports", str(reports)]
    assert cli("run", *select).returncode == 1
    again = cli("run", *select, "--lf")
    assert again.returncode == 1
    assert sorted(outcomes(report_of(again))) == ["super-admin@free/marketing-automation", "super-admin@free/seed-app"]
    stop = cli("run", *select, "-x")
    assert stop.returncode == 1 and "have no result" in stop.stdout  # stopped early: the rest is named
    bad = cli("run", "--no-such-flag")
    assert bad.returncode == 2 and "unrecognized argument '--no-such-flag'" in bad.stderr


def test_pytest_help_lists_the_matrix_options():
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=120)
    assert "--sm-run-dir" in out.stdout and "--sm-plan" in out.stdout


def test_a_plain_pytest_run_of_the_matrix_writes_the_same_report(tmp_path):
    run = tmp_path / "run-pytest"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "scopematrix/suite/test_matrix.py"), "-c",
         str(ROOT / "scopematrix/suite/pytest.ini"), "-p", "no:cacheprovider", "--sm-run-dir", str(run),
         "--sm-user", "super-admin", "--sm-account", "free", "--sm-no-diagnose", "-k", "seed or crm-read"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"scopematrix report: {run / 'index.html'}" in proc.stdout
    assert sorted(outcomes(run)) == ["super-admin@free/crm-read", "super-admin@free/seed-app"]
    assert (run / "junit.xml").is_file() and (run / "results.csv").is_file()
