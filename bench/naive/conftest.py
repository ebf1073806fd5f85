"""The naive arm's browser: the same Chromium binary the other arms use (Playwright's own browser download
is not possible on this machine), with the machine's launch flags. A QA engineer here would write this."""

from __future__ import annotations

from typing import Any

import pytest

from scopematrix.browser import CHROMIUM_ARGS, find_browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    choice = find_browser(headless=True)
    if choice is None:
        return browser_type_launch_args
    return {**browser_type_launch_args, "executable_path": choice.executable_path, "args": list(CHROMIUM_ARGS)}
