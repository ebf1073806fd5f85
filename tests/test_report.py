from __future__ import annotations

import json

from scopematrix.model import Capture, CellResult, Diagnosis, Outcome, Remedy, Screen
from scopematrix.report.build import RunMeta, text_grid, write_report
from scopematrix.runs import EXIT_INFRA, EXIT_OK, EXIT_REGRESSION, exit_code

META = RunMeta("run-x", "sim", "embedded simulator", "Seed App", "2026-11-28T00:00:00+00:00", 1.0)


def cell(user="u", account="a", scope_set="s", outcome=Outcome.GRANTED, **kw) -> CellResult:
    return CellResult(
        f"{user}@{account}/{scope_set}", user, "Role", account, 1, scope_set, ("forms",), (), outcome, **kw
    )


def test_results_json_has_a_versioned_schema_and_round_trips(tmp_path):
    diag = Diagnosis(("forms",), "user", remedies=(Remedy("optional_scope", "x", True, Outcome.GRANTED),), probes=3)
    records = [
        cell(outcome=Outcome.DENIED_PERMISSIONS, diagnosis=diag, screenshots=(Capture(Screen.CONSENT, "p.png", True),)),
        cell(user="v"),
    ]
    write_report(tmp_path, records, META)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["schema_version"] == 1 and doc["summary"]["denied_permissions"] == 1
    required = {
        "user",
        "role",
        "account",
        "scope_set",
        "requested_scopes",
        "optional_scopes",
        "outcome",
        "granted_scopes",
        "heading",
        "message",
        "missing_permissions",
        "screenshots",
        "expected",
        "attempts",
        "duration_s",
        "diagnosis",
    }
    assert required <= set(doc["cells"][0])
    back = [CellResult.from_dict(c) for c in doc["cells"]]
    assert sorted(back, key=lambda r: r.user) == sorted(records, key=lambda r: r.user)
    assert (tmp_path / "results.csv").read_text().count("\n") == 3


def test_page_text_is_escaped_so_injected_markup_is_inert(tmp_path):
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script></script>'
    write_report(tmp_path, [cell(outcome=Outcome.APP_MISCONFIGURED, message=evil, heading=evil)], META)
    html = (tmp_path / "index.html").read_text()
    assert "<script>window.pwned" not in html and "<img src=x" not in html


def test_text_grid_marks_cells_that_differ_from_expectation():
    grid = text_grid([cell(outcome=Outcome.DENIED_ACCOUNT, expected=Outcome.GRANTED), cell(user="v")])
    assert "ACCT!" in grid and "1 differ from expectation" in grid


def test_exit_codes_separate_regressions_from_infrastructure():
    ok = cell(expected=Outcome.GRANTED)
    flipped = cell(outcome=Outcome.DENIED_ACCOUNT, expected=Outcome.GRANTED)
    broken = cell(outcome=Outcome.ERROR, expected=Outcome.GRANTED)
    assert exit_code([ok]) == EXIT_OK
    assert exit_code([ok, broken]) == EXIT_INFRA
    assert exit_code([flipped, broken]) == EXIT_REGRESSION
    assert exit_code([ok], stale=["gone@x/y"], strict=True) == EXIT_REGRESSION
    assert exit_code([cell(outcome=Outcome.DENIED_ACCOUNT)]) == EXIT_OK  # a denial without expectation is data


def test_report_command_rebuilds_a_report_from_results_json(tmp_path, capsys):
    from scopematrix.cli import main

    write_report(tmp_path, [cell(outcome=Outcome.DENIED_ACCOUNT), cell(user="v")], META)
    (tmp_path / "index.html").unlink()
    assert main(["report", str(tmp_path / "results.json")]) == 0
    assert (tmp_path / "index.html").is_file()
    out = capsys.readouterr().out
    assert "ACCT" in out and f"report: {tmp_path / 'index.html'}" in out


def test_terminal_summary_lists_each_diagnosis_with_its_verified_fixes():
    from scopematrix.report.build import text_diagnoses

    diag = Diagnosis(("forms",), "user", remedies=(Remedy("optional_scope", "x", True, Outcome.GRANTED),
                                                    Remedy("grant_permissions", "y", None)), probes=4,
                     summary="Blocked by forms (user-level)")  # fmt: skip
    text = text_diagnoses([cell(outcome=Outcome.DENIED_PERMISSIONS, diagnosis=diag), cell(user="v")])
    assert text.splitlines() == [
        "diagnoses:",
        "  u@a/s: Blocked by forms (user-level); verified fix: optional_scope (4 probes)",
    ]
    assert text_diagnoses([cell()]) == ""


def test_a_crafted_results_file_cannot_smuggle_links_into_the_report(tmp_path):
    evil = cell(
        outcome=Outcome.UNRECOGNIZED,
        html_path="javascript:alert(1)",
        trace_path="https://evil.example/t.zip",
        screenshots=(Capture(Screen.UNKNOWN, "../../etc/passwd", True), Capture(Screen.CONSENT, "cells/a.png")),
    )
    write_report(tmp_path, [evil], META)
    html = (tmp_path / "index.html").read_text()
    assert "javascript:alert" not in html and "evil.example" not in html and "etc/passwd" not in html
    assert "cells/a.png" in html
