"""The report page in a real browser: grid, filters, detail view, keyboard, inert page text; and the customer
troubleshooting page (`scopematrix troubleshoot`) of a real default run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from scopematrix.cli import main
from scopematrix.matrix import load_matrix
from scopematrix.model import Capture, CellResult, Diagnosis, Outcome, Remedy, ScopeFinding, Screen
from scopematrix.report.build import RunMeta, read_results_document, write_report
from scopematrix.simtarget import sim_target
from scopematrix.simulator.scenario import load_scenario

pytestmark = pytest.mark.e2e
EVIL = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5d1e1b60000000049454e44ae426082"
)


def make_report(tmp_path: Path) -> Path:
    (tmp_path / "shot.png").write_bytes(PNG)
    shot = (Capture(Screen.CONSENT, "shot.png", True),)
    diag = Diagnosis(
        ("forms", "content"), "user", (ScopeFinding("forms", "user", "Forms › Publish"),),
        remedies=(Remedy("optional_scope", "Move forms, content to optional_scope", True, Outcome.GRANTED),),
        probes=6, summary="Blocked by forms, content (user-level)",
    )  # fmt: skip
    records = [
        CellResult("alice@pro/crm", "alice", "Super admin", "pro", 2, "crm", ("crm.objects.contacts.read",), (),
                   Outcome.GRANTED, screenshots=shot, offered_scopes=("oauth", "crm.objects.contacts.read")),
        CellResult("bob@pro/crm", "bob", "Sales admin", "pro", 2, "crm", ("forms", "content"), (),
                   Outcome.DENIED_PERMISSIONS, heading="You don’t have the right permissions", message=EVIL,
                   missing_permissions=("Forms › Publish",), screenshots=shot, diagnosis=diag,
                   expected=Outcome.GRANTED),
        CellResult("alice@free/crm", "alice", "Super admin", "free", 1, "crm", ("content",), (),
                   Outcome.DENIED_ACCOUNT, screenshots=shot),
        CellResult("alice@free/seed", "alice", "Super admin", "free", 1, "seed", ("forms",), (),
                   Outcome.GRANTED),
    ]  # fmt: skip
    meta = RunMeta("run-x", "sim", "embedded simulator", "Seed App", "2026-11-28T00:00:00+00:00", 12.5,
                   {"scopematrix": "0.1.0"})  # fmt: skip
    return write_report(tmp_path, records, meta)


def test_grid_filters_detail_and_keyboard(tmp_path: Path, page: Page) -> None:
    page.goto(make_report(tmp_path).as_uri())
    expect(page.get_by_role("heading", name="pro")).to_be_visible()
    expect(page.locator("button.cell")).to_have_count(4)
    bob = page.get_by_role("button", name="bob@pro/crm")
    expect(bob).to_contain_text("Denied: user")
    expect(bob).to_contain_text("!")  # differs from its expectation
    expect(page.locator("#run-meta")).to_contain_text("Target sim")

    page.get_by_role("button", name=re.compile("Denied: account: 1")).click()  # hide one outcome
    hidden = page.locator('[data-cell="alice@free/crm"]')  # filtered out: dimmed, out of the a11y tree and tab order
    expect(hidden).to_have_class(re.compile("dim"))
    expect(hidden).to_have_attribute("aria-hidden", "true")
    expect(hidden).to_have_attribute("tabindex", "-1")
    page.get_by_role("combobox", name="User").select_option("bob")
    expect(page.locator("tr[data-user=alice]").first).to_be_hidden()
    page.get_by_role("combobox", name="User").select_option("")

    bob.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("bob@pro/crm")
    expect(dialog).to_contain_text(EVIL)  # shown as text ...
    assert page.evaluate("window.pwned") is None  # ... and never run
    expect(dialog).to_contain_text("Blocked by forms, content (user-level)")
    expect(dialog).to_contain_text("Forms › Publish")
    expect(dialog).to_contain_text("scopematrix run --user bob --account pro --scope-set crm")
    expect(dialog.get_by_role("img", name="screenshot: consent")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="alice@pro/crm").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_contain_text("alice@pro/crm")


def test_the_grid_says_why_and_what_was_expected_and_scrolls_in_its_box_on_a_phone(tmp_path: Path, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(make_report(tmp_path).as_uri())
    bob = page.get_by_role("button", name="bob@pro/crm")
    expect(bob).to_contain_text("forms, content")  # the blocking scopes, in the grid
    expect(bob).to_contain_text("expected granted, got denied_permissions")
    expect(page.locator("#regressions")).to_contain_text("1 regression(s)")
    # The page never scrolls sideways: the grid does, inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    bob.click()
    expect(page.get_by_role("dialog")).to_contain_text("not reachable now")  # a simulator URL, marked


def test_the_troubleshooting_page_is_self_contained_private_and_readable_on_a_phone(
    default_run: Path, tmp_path: Path, page: Page
) -> None:
    assert main(["troubleshoot", str(default_run), "--out", str(tmp_path / "ts")]) == 0
    html, md = tmp_path / "ts" / "troubleshooting.html", tmp_path / "ts" / "troubleshooting.md"
    _, results = read_results_document(default_run / "results.json")
    scenario, matrix = load_scenario(), load_matrix()
    target = sim_target(matrix, scenario, "http://127.0.0.1", {u.id for u in matrix.spec.users})
    private = {str(r.hub_id) for r in results} | {r.cell_id for r in results}
    private |= {u.id for u in matrix.spec.users} | {"marketing-pro", "127.0.0.1", "localhost", "scopematrix.example"}
    for creds in target.credentials.values():
        private |= {v for v in (creds.email, creds.password, creds.totp_secret) if v}
    for app in matrix.spec.apps:
        private |= {v for v in (app.client_id, app.redirect_uri) if v}
    for doc in (html.read_text(), md.read_text()):
        leaked = sorted(p for p in private if p in doc)
        assert not leaked, leaked
        assert "<img" not in doc and ".png" not in doc  # no test-account screenshots
        assert "Couldn’t complete the connection" in doc and "Admin without App Marketplace Access" in doc
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(html.as_uri())
    assert [u for u in requests if not u.startswith("file:")] == []  # 0 external requests
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 16
    assert page.title().startswith("Trouble connecting")
    assert "Measured on scopematrix's HubSpot simulator" in page.evaluate("document.body.innerText")
