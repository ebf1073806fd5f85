"""The matrix as a pytest suite: `pytest fixtures/matrix.yaml` with pytest's and pytest-playwright's habits,
and the page objects refusing pytest-playwright's sync page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import sync_playwright

from scopematrix.browser import CHROMIUM_ARGS, find_browser, playwright_ffmpeg
from scopematrix.flow import SharedLogins, shared_logins_dir
from scopematrix.pages.base import SyncPageError
from scopematrix.pages.screens import PAGE_TYPES, identify
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import DEFAULT_SCENARIO, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions

ROOT = Path(__file__).resolve().parents[1]
MATRIX = str(ROOT / "fixtures" / "matrix.yaml")
CELL = "super-admin@free/seed-app"
ONE_ACCOUNT = ["--sm-user", "super-admin", "--sm-account", "free", "--sm-no-diagnose"]


def pytest_run(cwd: Path, *args: str, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """pytest as a user runs it, from their own folder (its reports/ and cache land there)."""
    return subprocess.run(
        [*wrap, sys.executable, "-m", "pytest", MATRIX, "-o", f"cache_dir={cwd / '.cache'}", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip


def only_run(cwd: Path) -> Path:
    runs = sorted((cwd / "reports").glob("run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def outcomes(run_dir: Path) -> dict[str, str]:
    return {c["cell_id"]: c["outcome"] for c in json.loads((run_dir / "results.json").read_text())["cells"]}


def artifact_folder(output: Path) -> Path:
    folders = list(output.iterdir())
    assert len(folders) == 1 and "super-admin-free-seed-app" in folders[0].name, folders
    return folders[0]


def test_one_cell_by_k_with_its_trace_and_screenshot_in_output(tmp_path):
    (tmp_path / "test-results").mkdir()
    (tmp_path / "test-results" / "mine.txt").write_text("another tool's file")
    out = tmp_path / "out"
    proc = pytest_run(tmp_path, "-k", "super-admin and free and seed", "--tracing", "on", "--screenshot", "on",
                      "--output", str(out), *ONE_ACCOUNT)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    run = only_run(tmp_path)
    assert outcomes(run) == {CELL: "denied_account"}  # a denial is data: the test passes
    assert f"scopematrix report: {run / 'index.html'}" in proc.stdout
    folder = artifact_folder(out)
    assert sorted(p.name for p in folder.iterdir()) == ["test-finished-1.png", "trace.zip"]
    assert (folder / "trace.zip").read_bytes()[:2] == b"PK"
    assert (folder / "test-finished-1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "test-results" / "mine.txt").is_file()  # never another tool's files


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="no xvfb-run: make setup installs it for headed runs")
def test_headed_with_a_trace_in_output(tmp_path):
    out = tmp_path / "out"
    proc = pytest_run(tmp_path, "-k", "super-admin and free and seed", "--headed", "--tracing", "on",
                      "--output", str(out), *ONE_ACCOUNT, wrap=("xvfb-run", "-a"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outcomes(only_run(tmp_path)) == {CELL: "denied_account"}
    assert [p.name for p in artifact_folder(out).iterdir()] == ["trace.zip"]


def test_last_failed_reruns_only_the_cells_that_failed(tmp_path):
    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    doc["accounts"][0]["tiers"] = {"marketing": "professional"}  # two free-account cells now install
    changed = tmp_path / "scenario.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True))
    first = pytest_run(tmp_path, "--sm-scenario", str(changed), *ONE_ACCOUNT)
    assert first.returncode == 1 and "2 failed, 5 passed" in first.stdout, first.stdout
    shutil.rmtree(tmp_path / "reports")
    again = pytest_run(tmp_path, "--sm-scenario", str(changed), "--lf", *ONE_ACCOUNT)
    assert again.returncode == 1 and "2 failed" in again.stdout and "passed" not in again.stdout.splitlines()[-1]
    failed = ["super-admin@free/marketing-automation", "super-admin@free/seed-app"]
    assert sorted(outcomes(only_run(tmp_path))) == failed


def test_video_needs_playwright_ffmpeg_or_is_refused_in_one_line(tmp_path):
    proc = pytest_run(tmp_path, "-k", "super-admin and free and seed", "--video", "on", "--output",
                      str(tmp_path / "out"), *ONE_ACCOUNT)  # fmt: skip
    if playwright_ffmpeg() is None:
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR
        assert "--video on needs Playwright's ffmpeg" in proc.stderr
        assert "Fix: run 'playwright install ffmpeg'" in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "reports").exists()
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (artifact_folder(tmp_path / "out") / "video.webm").is_file()


def test_two_matrix_files_are_refused(tmp_path):
    proc = pytest_run(tmp_path, MATRIX)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "run one matrix at a time" in proc.stderr


def test_page_objects_refuse_a_sync_page():
    """A sync page would make every page-object call a coroutine nobody awaits: a silent pass. Refused.

    Sync Playwright runs in its own thread here, so it never holds this process's event loop."""

    def with_sync_page() -> int:
        choice = find_browser(headless=True)
        assert choice is not None
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=choice.executable_path, args=list(CHROMIUM_ARGS))
            page = browser.new_page()
            for page_type in PAGE_TYPES:
                with pytest.raises(SyncPageError, match="async API"):
                    page_type(page)  # type: ignore[arg-type]  # mypy refuses it as well
            with pytest.raises(SyncPageError, match="authorize"):
                identify(page, 1.0).close()  # type: ignore[arg-type]  # raises at the call
            browser.close()
        return len(PAGE_TYPES)

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(with_sync_page).result(timeout=120) == 10


def test_the_example_tests_pass_as_a_user_runs_them(tmp_path):
    """tests/examples: the README's custom test and the fixtures it uses, in a pytest of its own."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests" / "examples"), "-q", "-o", f"cache_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout.splitlines()[-1]


def test_the_workers_of_one_run_share_a_login_so_each_user_logs_in_once(tmp_path):
    """-n 2: super-admin's cells run on one worker, sales-admin's on the other, whose diagnoses need the
    super admin too. One login each, counted by the simulator's sessions; the shared logins are gone after."""
    with SimServer(create_app(load_scenario(), SimOptions(test_support=True))) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "scopematrix.cli", "run", "--user", "super-admin", "--user", "sales-admin",
             "--account", "enterprise", "-n", "2", "--target-url", server.url, "--reports", str(tmp_path / "r")],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
        )  # fmt: skip
        sessions = len(server.app.simulator.state.sessions)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = next((tmp_path / "r").glob("run-*"))
    cells = json.loads((run / "results.json").read_text())["cells"]
    workers = {p.name for p in run.glob("results-gw*.jsonl")}
    assert workers == {"results-gw0.jsonl", "results-gw1.jsonl"}  # both workers ran cells
    diagnosed = [c for c in cells if c["user"] == "sales-admin" and c.get("diagnosis")]
    assert diagnosed and all(c["diagnosis"]["attribution"] for c in diagnosed)  # the super admin was asked
    assert sessions == 2
    assert not shared_logins_dir(run.name).exists()


def test_a_shared_login_folder_is_ours_alone_or_not_used(tmp_path):
    mine = tmp_path / "mine" / "logins" / "run-1"
    (tmp_path / "mine").mkdir(mode=0o755)
    assert SharedLogins.open(mine, "sales-admin") is not None
    assert all(oct(p.stat().st_mode & 0o777) == "0o700" for p in (tmp_path / "mine", mine.parent, mine))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert SharedLogins.open(tmp_path / "link" / "logins" / "run-1", "sales-admin") is None  # a planted symlink
    assert SharedLogins.open(None, "sales-admin") is None


LAUNCH_PROBE = """
def test_flags(browser_type_launch_args{extra}):
    print("LAUNCH", sorted(browser_type_launch_args.items()))
"""


@pytest.mark.parametrize(("extra", "ours"), [("", False), (", sm_target", True)])
def test_only_sessions_that_use_scopematrix_get_its_browser_and_loopback_pinning(tmp_path, extra, ours):
    """A pytest-playwright suite in the same environment runs exactly as without scopematrix: no browser
    path, no launch flags, no DNS pinning. A session using our fixtures gets the Chromium found, pinned."""
    (tmp_path / "test_probe.py").write_text(LAUNCH_PROBE.format(extra=extra))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_probe.py"), "-q", "-s", "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    launch = next(line for line in proc.stdout.splitlines() if line.startswith("LAUNCH"))
    assert ("executable_path" in launch) is ours
    assert ("--disable-background-networking" in launch) is ours
    assert ("--host-resolver-rules=MAP * ~NOTFOUND" in launch) is ours
