"""The naive arm's browser: the same Chromium binary the other arms use (Playwright's own browser download
is not possible on this machine), with the machine's launch flags. A QA engineer here would write this."""

from __future__ import annotations

from typing import Any

import pytest

from scopematrix.launch import with_found_chromium


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return with_found_chromium(browser_type_launch_args)
