"""Fail when a Playwright locator appears outside scopematrix/pages/ (style rule: locators only in pages/)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATTERN = re.compile(r"\.(locator|get_by_role|get_by_label|get_by_text|get_by_test_id|query_selector)\(")
# The report's browser test drives the report page; bench/minimal.py, bench/tuned.py and bench/naive/ are the
# hand-written baselines the benchmark compares the harness with; tests/examples/ are a QA engineer's own tests
# beside the matrix (what the README shows users writing): none drives HubSpot through the harness.
ALLOWED = ("scopematrix/pages/", "tests/test_report_browser.py", "bench/minimal.py", "bench/naive/", "bench/tuned.py",
           "tests/examples/")  # fmt: skip


def offenders() -> list[str]:
    found = []
    for folder in ("scopematrix", "tests", "fixtures", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(ALLOWED) or rel == "scopematrix/tools/check_locators.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if PATTERN.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    return found


if __name__ == "__main__":
    bad = offenders()
    for line in bad:
        print(f"locator outside pages/: {line}")
    sys.exit(1 if bad else 0)
