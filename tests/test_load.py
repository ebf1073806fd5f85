"""Outcomes don't depend on the clock: the default matrix under pytest-xdist, with every core kept busy by
a spinning process, gives exactly the serial outcomes (the baseline, itself checked against the rules)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scopematrix.matrix import load_matrix

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def _spin() -> None:
    while True:
        pass


def test_parallel_run_on_a_saturated_machine_gives_the_serial_outcomes(tmp_path):
    spinners = [
        multiprocessing.get_context("fork").Process(target=_spin, daemon=True) for _ in range(os.cpu_count() or 2)
    ]
    for p in spinners:
        p.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
        proc = subprocess.run(
            [sys.executable, "-m", "scopematrix.cli", "run", "-n", "2", "--no-diagnose", "--reports", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=1500, env=env,
        )  # fmt: skip
    finally:
        for p in spinners:
            p.kill()
            p.join()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (run,) = tmp_path.glob("run-*")
    cells = json.loads((run / "results.json").read_text())["cells"]
    assert len(cells) == len(load_matrix().cells())
    assert all(c["outcome"] == c["expected"] for c in cells)
