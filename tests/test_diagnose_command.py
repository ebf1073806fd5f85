"""`scopematrix diagnose` for one combination, end to end against the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


def test_diagnose_names_the_blocking_scopes_and_the_fixes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", "diagnose", "--user", "sales-admin", "--account", "marketing-pro",
         "--scopes", "forms contacts content files", "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "sales-admin@marketing-pro/adhoc: denied_permissions" in out
    assert "blocking scopes: forms, content" in out
    assert "forms: user-level" in out and "content: user-level" in out
    assert "fix (optional_scope" in out and "fix (grant_permissions" in out
