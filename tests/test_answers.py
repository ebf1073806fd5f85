"""`scopematrix explain` on a real run of the default matrix (with diagnosis); the troubleshooting page in a
browser is in test_report_browser.py (pytest-playwright's sync page holds the event loop for the session)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scopematrix.answers.explain import Answer, explain, fault_of
from scopematrix.answers.profile import normal, parse_products
from scopematrix.cli import main
from scopematrix.matrix import load_matrix
from scopematrix.report.build import read_results_document

pytestmark = pytest.mark.e2e
MATRIX = load_matrix()


def explain_cli(run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scopematrix.cli", "explain", "--run", str(run), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_explain_answers_every_tested_role_and_products_as_the_cells_say(default_run: Path) -> None:
    _, results = read_results_document(default_run / "results.json")
    described = {(r.customer_role, tuple(normal(r.account_products or {}).items())) for r in results}
    assert len(described) >= 12  # 5 kinds of user x 3 accounts, as the matrix has them
    checked = 0
    for role, products in described:
        answer = explain(results, role, dict(products))
        assert answer.tested
        cells = [r for r in results if r.customer_role == role and normal(r.account_products or {}) == dict(products)]
        by_option: dict[str, dict[str, object]] = {}
        for o in answer.options:
            by_option[o.option] = {"verdict": o.verdict, "variants": {v.tested_as: v for v in o.variants}}
        for r in cells:
            variant = by_option[r.scope_set_label or r.scope_set]["variants"][r.role]  # type: ignore[index]
            assert variant.outcome == r.outcome.value and variant.installs == r.outcome.installs
            assert variant.blocking_scopes == list(r.diagnosis.blocking_scopes if r.diagnosis else ())
            assert variant.fault == fault_of(r)
            if r.diagnosis and any(m.kind == "super_admin_first" and m.verified for m in r.diagnosis.remedies):
                assert any("install" in f.text and "first" in f.text and f.verified for f in variant.fixes)
            checked += 1
    assert checked == len(results) == 105
    seed = explain(results, "super_admin", {}, app="seed app")  # the app's name, as support hears it
    assert seed.tested and {o.app for o in seed.options} == {"Seed App"}


def test_explain_says_not_tested_and_names_the_nearest_measured_cells(default_run: Path) -> None:
    proc = explain_cli(default_run, "--role", "restricted", "--products", "free", "--json")
    assert proc.returncode == 1, proc.stderr
    answer = Answer.model_validate_json(proc.stdout)  # --json is the model, field by field
    assert not answer.tested and answer.options == [] and "Not tested" in answer.summary
    assert answer.nearest and {n.role for n in answer.nearest} == {"User with limited permissions"}


def test_explain_json_is_the_model_and_the_text_names_the_fix(default_run: Path) -> None:
    says = "You don't have the right permissions"
    proc = explain_cli(default_run, "--role", "admin", "--products", "free", "--app", "CRM Sync",
                       "--scope-set", "crm-read", "--json", "--says", says)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    answer = Answer.model_validate_json(proc.stdout)
    (option,) = answer.options
    assert option.verdict == "blocked" and answer.says_matches is True
    (variant,) = option.variants
    assert variant.outcome == "needs_approval" or variant.fault == "user"
    assert any(f.who == "a super admin" and f.verified for f in variant.fixes)
    text = explain_cli(default_run, "--role", "admin", "--products", "free", "--scope-set", "crm-read")
    assert text.returncode == 0 and "install CRM Sync first" in text.stdout
    assert json.loads(proc.stdout)["products"] == "Free tools only"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--role", "wizard", "--products", "free"], "'wizard' is not one of super-admin"),
        (["--role", "admin", "--products", "marketing:gold"], "'marketing:gold' is not hub:tier"),
        (["--role", "admin", "--products", "free", "--run", "run-nowhere"], "run 'run-nowhere' has no results.json"),
    ],
)
def test_explain_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, needle) -> None:
    assert main(["explain", "--reports", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_products_are_read_as_a_customer_says_them() -> None:
    assert parse_products("Marketing Hub:Professional, sales:starter") == {"marketing": "professional",
                                                                           "sales": "starter"}  # fmt: skip
    assert parse_products("free") == {}
    with pytest.raises(ValueError):
        parse_products("marketing")
