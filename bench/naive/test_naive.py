"""The naive arm: a plain pytest-playwright suite, as a QA engineer writes one by hand.

Serial, pytest-playwright's fresh context (`page`) for every test, a full login in every test, written from
the hosted screens (the brief's selectors), not from scopematrix's page objects. The benchmark writes the
cells (authorize URL and credentials) to the JSON file in SCOPEMATRIX_BENCH_CELLS and runs this file with
`pytest`; its conftest.py points pytest-playwright at the same browser binary as the other arms.
"""

import json
import os
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page

CELLS = (
    json.loads(Path(os.environ["SCOPEMATRIX_BENCH_CELLS"]).read_text())
    if "SCOPEMATRIX_BENCH_CELLS" in os.environ
    else []
)


def log_in(page: Page, app_url: str, email: str, password: str, totp: str | None) -> None:
    page.goto(app_url + "/login")
    page.fill('[data-test-id="email-input-field"]', email)
    page.click('[data-test-id="email-submit-button"]')
    page.fill('[data-test-id="password-input-field"]', password)
    page.click('[data-test-id="password-login-submit"]')
    page.wait_for_load_state()
    if totp and page.locator('[data-test-id="two-factor-code-input"]').count():
        page.fill('[data-test-id="two-factor-code-input"]', pyotp.TOTP(totp).now())
        page.click('[data-test-id="2fa-code-submit"]')
        page.get_by_role("button", name="Skip for now").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("cell", CELLS, ids=[c["id"] for c in CELLS])
def test_install(page: Page, cell: dict[str, str], tmp_path: Path) -> None:
    log_in(page, cell["app_url"], cell["email"], cell["password"], cell["totp"])
    page.goto(cell["url"])
    page.locator("h1").first.wait_for()
    page.screenshot(path=str(tmp_path / "decisive.png"))
