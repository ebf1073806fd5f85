"""The outputs as the tools that read them see them: JUnit (schema and a JUnit reader), Excel's CSV, the
Allure result files, and the nightly workflow under zizmor and shellcheck."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml
from junitparser import Error, Failure, JUnitXml

from scopematrix.model import Capture, CellResult, Diagnosis, Outcome, Screen
from scopematrix.report.build import RunMeta, write_report

ROOT = Path(__file__).resolve().parents[1]
ALLURE_CLI = "2.34.1"
META = RunMeta("run-x", "sim", "embedded simulator", "Seed App", "2026-11-28T00:00:00+00:00", 1.0)


def record(user: str, account: str, outcome: Outcome, expected: Outcome, **kw: object) -> CellResult:
    return CellResult(f"{user}@{account}/crm-read", user, "Role", account, 1, "crm-read", ("forms",), (), outcome,
                      expected=expected, duration_s=1.25, **kw)  # type: ignore[arg-type]  # fmt: skip


RECORDS = [
    record("ok", "free", Outcome.GRANTED, Outcome.GRANTED, screenshots=(Capture(Screen.CONSENT, "c.png", True),)),
    record("reg", "free", Outcome.DENIED_ACCOUNT, Outcome.GRANTED, message="This account doesn’t have access",
           diagnosis=Diagnosis(("content",), "account", summary="Blocked by content (account-level)")),
    record("down", "enterprise", Outcome.ERROR, Outcome.GRANTED, message="HTTP 503 from the target"),
    record("new", "enterprise", Outcome.UNRECOGNIZED, Outcome.GRANTED, html_path="cells/x/unrecognized.html"),
]  # fmt: skip


def test_junit_is_valid_and_tells_a_regression_from_infrastructure(tmp_path):
    write_report(tmp_path, RECORDS, META)
    xmlschema.XMLSchema(ROOT / "tests/data/junit.xsd").validate(tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"free", "enterprise"}  # a suite per account
    cases = {f"{c.classname}/{c.name}": c for suite in xml for c in suite}
    assert set(cases) == {"free.ok/crm-read", "free.reg/crm-read", "enterprise.down/crm-read",
                          "enterprise.new/crm-read"}  # fmt: skip
    assert all(c.time == 1.25 for c in cases.values())  # the cell's own duration
    (failure,) = cases["free.reg/crm-read"].result
    assert isinstance(failure, Failure) and failure.message == "expected granted, got denied_account"
    assert "Blocked by content" in (failure.text or "")
    for infra in ("enterprise.down/crm-read", "enterprise.new/crm-read"):
        (error,) = cases[infra].result
        assert isinstance(error, Error), infra  # never shown as a product failure
    assert cases["free.ok/crm-read"].result == []
    case = ET.parse(tmp_path / "junit.xml").find(".//testcase[@classname='free.reg']/properties")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case}
    assert props == {"outcome": "denied_account", "expected": "granted", "blocking_scopes": "content",
                     "must_install": "false"}  # fmt: skip
    assert f"[[ATTACHMENT|{(tmp_path / 'c.png').resolve()}]]" in (cases["free.ok/crm-read"].system_out or "")
    assert (suites["free"].failures, suites["enterprise"].errors) == (1, 2)


def test_csv_opens_in_excel_with_the_diagnosis_columns(tmp_path):
    write_report(tmp_path, RECORDS, META)
    raw = (tmp_path / "results.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads “Couldn’t” as written
    rows = list(csv.DictReader((tmp_path / "results.csv").open(encoding="utf-8-sig")))
    reg = next(r for r in rows if r["user"] == "reg")
    assert reg["diagnosis"] == "Blocked by content (account-level)" and reg["regression"] == "True"
    assert "doesn’t" in reg["message"]
    assert {"remedies", "expectation_reason", "must_install", "decisive_screenshot"} <= set(rows[0])


def test_hostile_page_text_reaches_csv_and_junit_harmless(tmp_path):
    """Texts come from HubSpot's page: a formula stays text in Excel, a control character keeps the XML valid."""
    hostile = [
        record("eq", "free", Outcome.UNRECOGNIZED, Outcome.GRANTED, heading="=HYPERLINK(\"http://x\")",
               message="@SUM(1+1)\x00\x07\x1b[31m"),
        record("plus", "free", Outcome.DENIED_ACCOUNT, Outcome.DENIED_ACCOUNT, heading="+1", message="-2"),
    ]  # fmt: skip
    write_report(tmp_path, hostile, META)
    rows = {r["user"]: r for r in csv.DictReader((tmp_path / "results.csv").open(encoding="utf-8-sig"))}
    assert rows["eq"]["heading"] == '\'=HYPERLINK("http://x")' and rows["eq"]["message"].startswith("'@SUM")
    assert (rows["plus"]["heading"], rows["plus"]["message"]) == ("'+1", "'-2")
    assert rows["plus"]["hub_id"] == "1"  # numbers stay numbers
    xmlschema.XMLSchema(ROOT / "tests/data/junit.xsd").validate(tmp_path / "junit.xml")
    text = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "\\x00" in text and "\x00" not in text and "\x1b" not in text


def test_report_replaces_only_its_own_latest_link(tmp_path):
    (tmp_path / "latest").write_text("the user's own notes")
    write_report(tmp_path / "run-1", RECORDS, META)
    assert (tmp_path / "latest").read_text() == "the user's own notes"
    (tmp_path / "latest").unlink()
    write_report(tmp_path / "run-1", RECORDS, META)
    write_report(tmp_path / "run-2", RECORDS, META)
    assert os.readlink(tmp_path / "latest") == "run-2"  # ours is moved on


@pytest.mark.e2e
def test_allure_results_have_suites_titles_attachments_and_anchored_categories(tmp_path):
    """A run with a regression (the free account gained Marketing Professional) and unknown screens."""
    from scopematrix.simulator.scenario import DEFAULT_SCENARIO

    doc = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    doc["accounts"][0]["tiers"] = {"marketing": "professional"}
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(doc, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "scopematrix.cli", "run", "--scenario", str(scenario), "--user", "super-admin",
         "--account", "free", "--scope-set", "seed-app", "--scope-set", "crm-read", "--reports", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run,) = (tmp_path / "r").glob("run-*")
    allure = run / "allure-results"
    results = [json.loads(p.read_text()) for p in allure.glob("*-result.json")]
    assert len(results) == 2
    categories = json.loads((allure / "categories.json").read_text())
    for r in results:
        labels = {x["name"]: x["value"] for x in r["labels"]}
        assert (labels["parentSuite"], labels["suite"]) == ("free", "super-admin")
        assert labels["subSuite"] in ("seed-app", "crm-read")
        assert r["name"].startswith(f"super-admin × {labels['subSuite']} on free: ")  # the title stuck
        names = [a["name"] for a in r.get("attachments", [])]
        assert any(n.startswith("decisive screen") for n in names), names  # in the test body
        assert all((allure / a["source"]).is_file() for a in r["attachments"])
        matched = [c["name"] for c in categories if r["status"] in c["matchedStatuses"]
                   and re.fullmatch(c["messageRegex"], r.get("statusDetails", {}).get("message", ""))]  # fmt: skip
        if labels["subSuite"] == "seed-app":
            assert r["status"] == "failed" and matched == ["Regression"], (r["status"], matched)
        else:
            assert r["status"] == "passed" and matched == []
        cell = json.loads((run / "results.json").read_text())["cells"]
        own = next(c for c in cell if c["scope_set"] == labels["subSuite"])
        assert abs((r["stop"] - r["start"]) / 1000 - own["duration_s"]) < 0.01  # the cell's own duration
    assert (allure / "environment.properties").read_text().startswith("target=sim")
    assert json.loads((allure / "executor.json").read_text())["buildName"] == run.name
    # The Allure CLI itself (npm allure-commandline, on Java) builds the report and files the regression.
    report = tmp_path / "allure-report"
    built = subprocess.run(["npx", "--yes", f"allure-commandline@{ALLURE_CLI}", "generate", str(allure), "-o",
                            str(report), "--clean"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    widget = json.loads((report / "widgets/categories.json").read_text())
    assert {c["name"]: c["statistic"]["total"] for c in widget["items"]} == {"Regression": 1}
    suites = json.loads((report / "widgets/suites.json").read_text())
    assert [s["name"] for s in suites["items"]] == ["free"]


def test_the_nightly_workflow_passes_zizmor_and_shellcheck(tmp_path):
    bin_dir = Path(sys.executable).parent
    zizmor, shellcheck = bin_dir / "zizmor", shutil.which("shellcheck", path=str(bin_dir))
    assert zizmor.exists() and shellcheck, "make install brings zizmor and shellcheck (dev extras)"
    workflow = ROOT / ".github/workflows/nightly.yml"
    audit = subprocess.run([str(zizmor), "--offline", "--min-severity", "medium", str(workflow)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    flow = yaml.safe_load(workflow.read_text())
    scripts = [s["run"] for job in flow["jobs"].values() for s in job["steps"] if "run" in s]
    assert scripts and not any("${{" in s for s in scripts), "expressions reach scripts through env only"
    for n, script in enumerate(scripts):
        path = tmp_path / f"step-{n}.sh"
        path.write_text("#!/usr/bin/env bash\nset -e\n" + script)
        check = subprocess.run([shellcheck, "-S", "style", str(path)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout
