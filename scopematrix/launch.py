"""pytest-playwright's own `browser`, pointed at the Chromium set-up found, with the harness's flags.

Registered by scopematrix.plugin right after pytest-playwright. `playwright install` can't download
browsers everywhere; this finds Playwright's or the system's. Against the simulator nothing but loopback
resolves, so a test's page can't leave the machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from scopematrix.browser import CHROMIUM_ARGS, find_browser, host_rules


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig: pytest.Config, browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    args = dict(browser_type_launch_args)
    if pytestconfig.getoption("browser_channel", None) or args.get("executable_path"):
        return args  # the user chose a browser
    choice = find_browser(headless=not pytestconfig.getoption("headed", False))
    if choice is None:
        return args  # pytest-playwright's own error names the fix (playwright install)
    extra = [host_rules([], loopback_only=True)] if pytestconfig.getoption("sm_target", "sim") == "sim" else []
    return {**args, "executable_path": choice.executable_path, "args": [*CHROMIUM_ARGS, *extra]}
