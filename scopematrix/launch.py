"""pytest-playwright's own `browser`, pointed at the Chromium set-up found, with the harness's flags.

Registered by scopematrix.plugin right after pytest-playwright, and active only in a session that uses
scopematrix's fixtures: a pytest-playwright suite in the same environment runs exactly as without
scopematrix. `playwright install` can't download browsers everywhere; this finds Playwright's or the
system's. Against the simulator nothing but loopback resolves, so a test's page can't leave the machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from scopematrix.browser import CHROMIUM_ARGS, find_browser, host_rules

# The fixtures that sign a page in to the target (scopematrix.plugin).
TARGET_FIXTURES = frozenset({"sm_target", "authorize", "signed_in_context", "signed_in_page"})


@pytest.fixture(scope="session")
def browser_type_launch_args(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, browser_type_launch_args: dict[str, Any]
) -> dict[str, Any]:
    args = dict(browser_type_launch_args)
    ours = any(TARGET_FIXTURES & set(getattr(item, "fixturenames", ())) for item in request.session.items)
    if not ours or pytestconfig.getoption("browser_channel", None) or args.get("executable_path"):
        return args  # a session that doesn't use scopematrix runs exactly as without it; or the user chose
    choice = find_browser(headless=not pytestconfig.getoption("headed", False))
    if choice is None:
        return args  # pytest-playwright's own error names the fix (playwright install)
    flags = [*CHROMIUM_ARGS, *args.get("args", [])]
    if pytestconfig.getoption("sm_target", "sim") == "sim":
        flags.append(host_rules([], loopback_only=True))
    return {**args, "executable_path": choice.executable_path, "args": flags}
