from __future__ import annotations

from scopematrix.history import History, RunRow, flips
from scopematrix.model import CellResult, Outcome
from scopematrix.redact import REDACTED, Redactor


def result(cid: str, outcome: Outcome) -> CellResult:
    user, rest = cid.split("@")
    account, scope_set = rest.split("/")
    return CellResult(cid, user, "r", account, 1, scope_set, (), (), outcome)


def test_history_records_runs_and_reports_flips_and_trends(tmp_path):
    h = History(tmp_path / "h.sqlite")
    h.record(
        RunRow("run-1", "t1", "sim", "App", 2, 1.0, False),
        [result("u@a/s", Outcome.GRANTED), result("v@a/s", Outcome.DENIED_ACCOUNT)],
    )
    h.record(
        RunRow("run-2", "t2", "sim", "App", 2, 1.0, True),
        [result("u@a/s", Outcome.DENIED_PERMISSIONS), result("v@a/s", Outcome.DENIED_ACCOUNT)],
    )
    h.record(RunRow("run-3", "t3", "live", "App", 1, 1.0, False), [result("u@a/s", Outcome.ERROR)])
    assert [r.run_id for r in h.runs()] == ["run-3", "run-2", "run-1"]
    assert h.previous_run("run-2", "sim") == "run-1"
    assert h.previous_run("run-3", "live") is None
    assert flips(h.outcomes("run-1"), h.outcomes("run-2")) == [("u@a/s", Outcome.GRANTED, Outcome.DENIED_PERMISSIONS)]
    assert h.trends("sim")["u@a/s"] == [Outcome.GRANTED, Outcome.DENIED_PERMISSIONS]
    assert h.trends("sim", runs=1)["u@a/s"] == [Outcome.DENIED_PERMISSIONS]
    h.close()


def test_redactor_scrubs_secrets_codes_tokens_and_state():
    redact = Redactor(["hunter2-password", "JBSWY3DP"])
    text = (
        "login hunter2-password totp JBSWY3DP at https://x/cb?code=na1-abc-123&state=s3cr3t "
        "Authorization: Bearer COabc.def"
    )
    out = redact(text)
    for leaked in ("hunter2-password", "JBSWY3DP", "na1-abc-123", "s3cr3t", "COabc.def"):
        assert leaked not in out
    assert out.count(REDACTED) == 5
