"""Reaching the target like a user would: live mode through base URLs and env credentials, a remote
browser server, and pytest-xdist workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scopematrix.browser import find_browser
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CRM_CLIENT = "9b2e4c61-3f0a-4d8e-b7c5-1a6f0e2d9c33"  # only the apps the selected cells use are needed
PROBE_CLIENT = "0c7d1f3a-5e2b-4a9c-8d6e-4f1b2a3c5d77"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    return subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", "run", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**base, **(env or {})},
    )  # fmt: skip


def cells_of(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("report: "))
    doc = json.loads((Path(line.removeprefix("report: ")).parent / "results.json").read_text())
    return {c["cell_id"]: c["outcome"] for c in doc["cells"]}


def test_live_mode_reaches_hubspot_through_base_urls_env_credentials_and_totp(tmp_path, scenario: Scenario):
    # A plain simulator, no test-support switches: what the harness sees is what real HubSpot would show.
    with SimServer(create_app(scenario, SimOptions())) as server:
        users = {u: scenario.users[u] for u in ("totp-admin", "super-admin")}
        dotenv = tmp_path / ".env"
        dotenv.write_text(
            "\n".join(
                [
                    f"SCOPEMATRIX_CRM_CLIENT_SECRET={scenario.apps[CRM_CLIENT].client_secret}",
                    f"SCOPEMATRIX_PROBE_CLIENT_SECRET={scenario.apps[PROBE_CLIENT].client_secret}",
                    f"SM_TOTP_ADMIN_EMAIL={users['totp-admin'].email}",
                    f"SM_TOTP_ADMIN_PASSWORD={users['totp-admin'].password}",
                    f"SM_TOTP_ADMIN_TOTP_SECRET={users['totp-admin'].totp_secret}",
                ]
            )
        )
        env = {  # the process environment wins over .env
            "SM_SUPER_ADMIN_EMAIL": users["super-admin"].email,
            "SM_SUPER_ADMIN_PASSWORD": users["super-admin"].password,
            "SCOPEMATRIX_APP_URL": server.url,
            "SCOPEMATRIX_API_URL": server.url,
        }
        proc = run(
            "--target", "live", "--env-file", str(dotenv), "--user", "totp-admin", "--account", "enterprise",
            "--scope-set", "deals-owners", "--scope-set", "custom-objects", "--approve",
            "--reports", str(tmp_path / "r"), env=env,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cells_of(proc) == {
        "totp-admin@enterprise/custom-objects": "granted",
        "totp-admin@enterprise/deals-owners": "granted_partial",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_remote_playwright_browser_server_on_loopback(tmp_path):
    choice = find_browser()
    assert choice is not None and choice.executable_path, "run make setup"
    port = _free_port()
    # Its own process group: the `playwright` launcher starts a node server that must go down with it.
    server = subprocess.Popen(
        [str(BIN / "playwright"), "run-server", "--port", str(port), "--host", "127.0.0.1", "--unsafe"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        proc = run(
            "--connect", f"ws://127.0.0.1:{port}/", "--remote-executable", choice.executable_path,
            "--user", "super-admin", "--account", "free", "--scope-set", "crm-read", "--scope-set", "seed-app",
            "--reports", str(tmp_path),
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cells_of(proc) == {"super-admin@free/crm-read": "granted", "super-admin@free/seed-app": "denied_account"}


def test_xdist_workers_give_the_same_results_as_a_serial_run(tmp_path):
    select = ["--account", "marketing-pro", "--scope-set", "crm-read", "--scope-set", "seed-app",
              "--reports", str(tmp_path)]  # fmt: skip
    serial = run(*select)
    parallel = run(*select, "-n", "2")
    assert serial.returncode == parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert cells_of(parallel) == cells_of(serial) and len(cells_of(serial)) == 12
    line = next(x for x in parallel.stdout.splitlines() if x.startswith("report: "))
    run_dir = Path(line.removeprefix("report: ")).parent
    per_worker = [json.loads(x)["cell_id"] for p in run_dir.glob("results-gw*.jsonl") for x in p.open()]
    assert len(list(run_dir.glob("results-gw*.jsonl"))) == 2
    assert sorted(per_worker) == sorted(cells_of(serial))  # no cell lost or run twice
