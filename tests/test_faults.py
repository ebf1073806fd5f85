"""Fault injection: outages, hangs, dropped connections, unknown screens, a killed browser, a forged
callback, interrupted runs, and secrets in every artifact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink
from scopematrix.flow import FlowOptions
from scopematrix.matrix import load_matrix
from scopematrix.model import Outcome
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import DEFAULT_SCENARIO, Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import Fault, SimOptions

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()
ROOT = Path(__file__).resolve().parents[1]
FAULTED = "admin-marketplace@marketing-pro/crm-read"  # authorize path /oauth/1000002/...
HEALTHY = "admin-marketplace@free/crm-read"  # /oauth/1000001/...


def engine_for(scenario: Scenario, server: SimServer, run_dir: Path, **flow: object) -> Engine:
    choice = find_browser(headless=True)
    assert choice is not None
    cells = MATRIX.cells()
    return Engine(
        target=sim_target(MATRIX, scenario, server.url, MATRIX.users_needed(cells)),
        matrix=MATRIX,
        run_dir=run_dir,
        run_id="faults",
        flow=FlowOptions(grace_s=1.5, **flow),  # type: ignore[arg-type]
        browser=BrowserOptions(choice.executable_path),
        concurrency=2,
        diagnose=False,
        sink=ResultSink(run_dir / "results-main.jsonl"),
    ).start()


def cells(*ids: str):
    by_id = {c.id: c for c in MATRIX.cells()}
    return [by_id[i] for i in ids]


@pytest.mark.parametrize(
    ("kind", "outcome", "words"),
    [
        ("5xx", Outcome.ERROR, ("HTTP 503",)),
        ("hang", Outcome.ERROR, ("Timeout",)),
        # Chromium reports a body cut short either as a net error or as a navigation that never ends.
        ("drop", Outcome.ERROR, ("ERR_", "Timeout")),
        ("maintenance", Outcome.UNRECOGNIZED, ("unknown screen",)),
    ],
)
def test_target_faults_end_as_infrastructure_after_a_retry_and_the_run_goes_on(
    tmp_path, scenario, kind, outcome, words
):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/1000002/", kind)])
    with SimServer(create_app(scenario, options)) as server:
        engine = engine_for(scenario, server, tmp_path, timeout_ms=2500)
        try:
            bad, good = engine.run_all(cells(FAULTED, HEALTHY))
        finally:
            engine.stop()
    assert bad.outcome is outcome and bad.attempts == 2, bad
    assert any(w in bad.message for w in words), bad.message
    assert good.outcome is Outcome.GRANTED and good.attempts == 1
    if outcome is Outcome.UNRECOGNIZED:  # the unknown screen's HTML and screenshot are kept
        assert bad.html_path and (tmp_path / bad.html_path).is_file() and bad.decisive is not None
    assert len((tmp_path / "results-main.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("step", "kind", "outcome", "words"),
    [
        ("/login", "5xx", Outcome.ERROR, "HTTP 503 from the target on the login page"),
        ("/login/password", "5xx", Outcome.ERROR, "HTTP 503 from the target on the login page"),
        ("/login/password", "drop", Outcome.ERROR, "the connection failed"),
        ("/login/password", "maintenance", Outcome.UNRECOGNIZED, "unknown screen during login at"),
        # The password was accepted, and the page the login lands on ("/") is down: not signed in, not a failure.
        ("/$", "5xx", Outcome.ERROR, "HTTP 503 from the target after login"),
        ("/$", "drop", Outcome.ERROR, ") after login"),
    ],
)
def test_an_outage_on_a_login_step_is_never_a_failed_login(tmp_path, scenario, step, kind, outcome, words):
    """login_failed needs HubSpot's own words; an outage on the email or password step is infrastructure
    (retried), and a login screen no page object knows is unrecognized (HTML kept)."""
    options = SimOptions(test_support=True, faults=[Fault(step, kind)])
    with SimServer(create_app(scenario, options)) as server:
        engine = engine_for(scenario, server, tmp_path, timeout_ms=2500)
        try:
            (result,) = engine.run_all(cells(HEALTHY))
        finally:
            engine.stop()
    assert result.outcome is outcome and result.attempts == 2, result
    assert words in result.message, result.message
    if outcome is Outcome.UNRECOGNIZED:
        assert result.html_path and (tmp_path / result.html_path).is_file()


def test_a_forged_state_on_the_callback_is_rejected(tmp_path, scenario):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/authorize/decision", "tamper-state")])
    with SimServer(create_app(scenario, options)) as server:
        engine = engine_for(scenario, server, tmp_path, approve=True)
        try:
            (result,) = engine.run_all(cells(HEALTHY))
        finally:
            engine.stop()
    assert result.outcome is Outcome.ERROR and "state does not match" in result.error
    assert result.granted_scopes is None


def _chromium_pids() -> list[int]:
    """Browser main processes started below this test process."""
    mine, found = {os.getpid()}, []
    for _ in range(4):  # python -> node driver -> chromium
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if int(stat[1]) in mine:
                mine.add(int(proc.name))
                if b"chrom" in cmd and b"--type=" not in cmd:
                    found.append(int(proc.name))
    return sorted(set(found))


def test_a_browser_killed_mid_cell_is_relaunched_and_the_cell_retried(tmp_path, scenario):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/1000002/", "hang", times=1)])
    with SimServer(create_app(scenario, options)) as server:
        engine = engine_for(scenario, server, tmp_path, timeout_ms=20_000)
        try:
            engine.submit(cells(FAULTED))
            deadline = time.monotonic() + 20
            while options.faults[0].times and time.monotonic() < deadline:  # until the cell is stuck
                time.sleep(0.1)
            pids = _chromium_pids()
            assert pids
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            (killed,) = engine.run_all(cells(FAULTED))
            (after,) = engine.run_all(cells(HEALTHY))
        finally:
            engine.stop()
    assert killed.attempts == 2 and killed.outcome is Outcome.GRANTED, killed
    assert after.outcome is Outcome.GRANTED


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # A process group of its own, so a test that kills the runner can also clean up its browser.
    return subprocess.Popen(
        [sys.executable, "-m", "scopematrix.cli", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


# 6 cells of one user: one login, so the 0.3 s latency slows the cells, not six logins.
SUBSET = ["--user", "super-admin", "--scope-set", "crm-read", "--scope-set", "seed-app", "--no-diagnose"]


def _run_dir(reports: Path) -> Path:
    (run,) = [p for p in reports.iterdir() if p.name.startswith("run-")]
    return run


def _wait_for_results(reports: Path, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [p for p in reports.glob("run-*/results-*.jsonl") if p.stat().st_size]
        if runs and sum(len(p.read_text().splitlines()) for p in runs) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError("no results appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_writes_a_report_and_resume_completes_it(tmp_path, sig):
    reports = tmp_path / "reports"
    proc = _cli(*SUBSET, "--latency", "0.3", "--concurrency", "1", "--reports", str(reports))
    _wait_for_results(reports, 2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    run = _run_dir(reports)
    doc = json.loads((run / "results.json").read_text())
    assert doc["run"]["interrupted"] is True and 2 <= len(doc["cells"]) < 6
    assert "--resume" in out and (run / "index.html").is_file()
    resumed = _cli("--resume", run.name, "--reports", str(reports))
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    doc = json.loads((run / "results.json").read_text())
    assert len(doc["cells"]) == 6 and doc["run"]["interrupted"] is False


def test_sigkill_loses_no_finished_cell(tmp_path):
    reports = tmp_path / "reports"
    proc = _cli(*SUBSET, "--latency", "0.3", "--concurrency", "1", "--reports", str(reports))
    _wait_for_results(reports, 2)
    proc.kill()
    proc.communicate(timeout=30)
    os.killpg(proc.pid, signal.SIGKILL)  # the orphaned driver and browser of the killed runner
    run = _run_dir(reports)
    lines = [json.loads(x) for p in run.glob("results-*.jsonl") for x in p.read_text().splitlines()]
    assert len(lines) >= 2 and all(x["outcome"] for x in lines)
    resumed = _cli("--resume", run.name, "--reports", str(reports))
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    doc = json.loads((run / "results.json").read_text())
    assert sorted(c["cell_id"] for c in doc["cells"]) == sorted(json.loads((run / "plan.json").read_text()))


STRUCTURED = re.compile(
    r'"name"\s*:\s*"(code|state|hs_session|hs_login|hs_2fa_device)"\s*,\s*"value"\s*:\s*"(?!\[REDACTED\])[^"]+"'
)
MARKERS = {
    "password": "PW-MARKER-",
    "client_secret": "CLIENT-SECRET-MARKER-4c1d",
    "totp": "SECRETTOTPMARKERAAAAAAAAAAAAAAAA",
}


def test_no_secret_reaches_any_artifact_of_a_run(tmp_path):
    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    doc["apps"][0]["client_secret"] = MARKERS["client_secret"]
    for user in doc["users"]:
        user["password"] = MARKERS["password"] + user["id"]
        if user.get("totp_secret"):
            user["totp_secret"] = MARKERS["totp"]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(doc, allow_unicode=True))
    reports = tmp_path / "reports"
    proc = _cli(
        "--scenario", str(scenario), "--reports", str(reports), "--approve", "--tracing", "on",
        "--account", "enterprise", "--scope-set", "crm-read", "--scope-set", "seed-app",
        "--user", "totp-admin", "--user", "admin-no-marketplace",
    )  # fmt: skip
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    texts = {"console": out}
    for path in reports.rglob("*"):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    texts[f"{path}:{name}"] = z.read(name).decode("utf-8", "replace")
        elif path.is_file() and path.suffix != ".png":
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(name.endswith("junit.xml") for name in texts) and any("allure-results" in n for n in texts)
    assert any(".zip:" in name for name in texts), "traces were kept"
    for name, text in texts.items():
        for marker in MARKERS.values():
            assert marker not in text, f"{marker[:10]}... in {name}"
        assert "code=na1-" not in text, f"an authorization code in {name}"
        # The trace's structured network log: query-string and form entries, headers and cookies.
        leaked = STRUCTURED.search(text)
        assert leaked is None, f"{leaked.group(0)[:60]}... in {name}"
        assert '"access_token": "CO' not in text and "refresh_token=na1-" not in text


def _shapes(value: str) -> dict[str, str]:
    import base64
    import html
    from urllib.parse import quote

    once = quote(value, safe="")
    b64 = base64.b64encode(value.encode()).decode().rstrip("=")
    return {"raw": value, "url-encoded": once, "url-encoded twice": quote(once, safe=""),
            "html-escaped": html.escape(value), "base64": b64}  # fmt: skip


def test_every_secret_value_is_scrubbed_from_logs_traces_and_records_in_every_encoding(tmp_path, scenario, caplog):
    """Redaction by value: the codes, tokens, passwords and client secrets the run handled, in any of five
    encodings, are in no artifact of an --approve --tracing on run, nor in a DEBUG log (httpx logs URLs)."""
    import logging

    caplog.set_level(logging.DEBUG)
    app = create_app(scenario, SimOptions(test_support=True))
    with SimServer(app) as server:
        engine = engine_for(scenario, server, tmp_path, approve=True, tracing="on")
        try:
            results = engine.run_all(cells(HEALTHY, "totp-admin@enterprise/deals-owners"))
        finally:
            engine.stop()
        target = sim_target(MATRIX, scenario, server.url, {"admin-marketplace", "totp-admin"})
    assert all(r.outcome.installs for r in results), results
    state = app.simulator.state
    handed_out = [*state.codes, *state.access_tokens, *target.secrets()]
    assert len(state.codes) >= 2 and state.access_tokens
    texts = {"log": caplog.text, "records": json.dumps([r.to_dict() for r in results])}
    for path in tmp_path.rglob("*"):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                texts |= {f"{path}:{n}": z.read(n).decode("utf-8", "replace") for n in z.namelist()}
        elif path.is_file() and path.suffix not in (".png", ".webm"):
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(".zip:" in name for name in texts) and "access-tokens" in caplog.text  # traces kept, httpx logged
    for value in handed_out:
        for shape, encoded in _shapes(value).items():
            for name, text in texts.items():
                assert encoded not in text, f"a secret ({shape}) in {name}"


def test_a_token_in_the_connect_url_is_written_nowhere(tmp_path):
    """`--connect ws://…?token=…` (a browser service's access token) is redacted from results.json's command
    and every other file the run writes, even when the browser service fails."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def refuse() -> None:
        while True:
            try:
                server.accept()[0].close()
            except OSError:
                return

    threading.Thread(target=refuse, daemon=True).start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scopematrix.cli", "run", "--connect", f"ws://127.0.0.1:{port}/?token=WS-TOKEN-4242",
             "--user", "super-admin", "--account", "free", "--scope-set", "crm-read", "--no-diagnose",
             "--reports", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.close()
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the service is no browser: infrastructure
    (results,) = tmp_path.rglob("results.json")
    assert "token=[REDACTED]" in json.loads(results.read_text())["run"]["command"]
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"WS-TOKEN-4242" not in path.read_bytes(), path


def test_a_consent_screen_served_by_another_origin_is_never_a_decision(tmp_path, scenario):
    """The same simulator behind a second origin (another port: cookies are shared, origins are not): a
    redirect there shows a real consent page, and the cell is still error, its URL kept, never granted."""
    app = create_app(scenario, SimOptions(test_support=True))
    with SimServer(app) as server, SimServer(app) as elsewhere:
        app.options.faults[:] = [Fault("/oauth/1000001/", "redirect", to=elsewhere.url)]
        engine = engine_for(scenario, server, tmp_path)
        try:
            (result,) = engine.run_all(cells(HEALTHY))
        finally:
            engine.stop()
    assert result.outcome is Outcome.ERROR and result.attempts == 2, result
    assert f"a screen served by {elsewhere.url}" in result.message and "/oauth/1000001/authorize" in result.message
    assert result.heading == ""  # nothing read from it as HubSpot's


def test_a_browser_that_hangs_at_launch_is_given_up_after_the_timeout(tmp_path):
    """--timeout bounds the launch too: a binary that never starts ends the run as infrastructure (exit 3),
    well before Playwright's own 30 s default."""
    hang = tmp_path / "chromium"
    hang.write_text("#!/bin/sh\nsleep 600\n")
    hang.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", "run", *SUBSET[:4], "--no-diagnose", "--timeout", "2",
         "--reports", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=25, env={**env, "SCOPEMATRIX_CHROMIUM": str(hang)},
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "have no result" in proc.stdout
