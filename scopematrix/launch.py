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
    if not ours or pytestconfig.getoption("browser_channel", None):
        return args  # a session that doesn't use scopematrix runs exactly as without it; or the user chose
    pin = [host_rules([], loopback_only=True)] if pytestconfig.getoption("sm_target", "sim") == "sim" else []
    return with_found_chromium(args, headless=not pytestconfig.getoption("headed", False), extra=pin)


def with_found_chromium(args: dict[str, Any], headless: bool = True, extra: list[str] | None = None) -> dict[str, Any]:
    """pytest-playwright launch arguments with the Chromium set-up found and the machine's flags: for a suite
    of your own on a machine where `playwright install` can't download a browser (call it from your
    conftest's `browser_type_launch_args`). Arguments that already name a browser are kept as they are."""
    choice = None if args.get("executable_path") else find_browser(headless=headless)
    if choice is None:
        return args  # (none found: pytest-playwright's own error names the fix, playwright install)
    flags = [*CHROMIUM_ARGS, *args.get("args", []), *(extra or [])]
    return {**args, "executable_path": choice.executable_path, "args": flags}
