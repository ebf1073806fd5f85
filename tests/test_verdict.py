"""Never green on nothing: the exit status says what happened to every planned cell.

Each cause that once ended in exit 0 with nothing tested, or lost cells, or called an outage a
regression, is reproduced here and must end in a clean line and the right code.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scopematrix.browser import find_browser
from scopematrix.cli import main
from scopematrix.engine import BrowserOptions, Engine
from scopematrix.flow import FlowOptions
from scopematrix.matrix import load_matrix
from scopematrix.model import CellResult, Outcome
from scopematrix.runs import EXIT_INFRA, EXIT_OK, EXIT_REGRESSION, EXIT_UNKNOWN_SCREEN, exit_code, missing_cells
from scopematrix.simtarget import sim_target
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import Fault, SimOptions

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix()


def cell(outcome: Outcome, expected: Outcome | None = None, cid: str = "u@a/s") -> CellResult:
    return CellResult(cid, "u", "Role", "a", 1, "s", ("forms",), (), outcome, expected=expected)


def test_exit_code_is_zero_only_when_every_planned_cell_matches():
    ok = [cell(Outcome.GRANTED, Outcome.GRANTED)]
    assert exit_code(ok) == EXIT_OK
    assert exit_code(ok, missing=["v@a/s"]) == EXIT_INFRA
    assert exit_code(ok, broken=True) == EXIT_INFRA
    assert exit_code([], missing=["u@a/s"]) == EXIT_INFRA
    assert exit_code([*ok, cell(Outcome.ERROR, Outcome.GRANTED, "w@a/s")]) == EXIT_INFRA
    assert exit_code([*ok, cell(Outcome.UNRECOGNIZED, Outcome.GRANTED, "w@a/s")]) == EXIT_UNKNOWN_SCREEN
    assert exit_code([*ok, cell(Outcome.DENIED_ACCOUNT, Outcome.GRANTED, "w@a/s")]) == EXIT_REGRESSION
    assert missing_cells(["u@a/s", "v@a/s"], ok) == ["v@a/s"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    return subprocess.run([sys.executable, "-m", "scopematrix.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**base, **(env or {})})  # fmt: skip


@pytest.mark.e2e
def test_cells_lost_to_a_browser_that_never_came_are_named_and_not_green(tmp_path, sim_server):
    # Something listens on the --connect port, but it is no Playwright server: no cell can run.
    proc = cli("run", "--connect", f"ws://127.0.0.1:{sim_server.port}/", "--user", "super-admin",
               "--account", "free", "--scope-set", "crm-read", "--scope-set", "seed-app", "--no-diagnose",
               "--reports", str(tmp_path))  # fmt: skip
    assert proc.returncode == EXIT_INFRA, proc.stdout + proc.stderr
    assert "2 planned cell(s) have no result: super-admin@free/crm-read, super-admin@free/seed-app" in proc.stdout


@pytest.mark.e2e
def test_an_outage_during_the_precondition_install_is_infrastructure_not_a_regression(tmp_path, scenario):
    # The super admin's install (precondition) posts the consent decision; the cell itself doesn't.
    options = SimOptions(test_support=True, faults=[Fault("/oauth/authorize/decision", "5xx")])
    with SimServer(create_app(scenario, options)) as server:
        proc = cli("run", "--user", "admin-no-marketplace", "--account", "marketing-pro", "--scope-set",
                   "crm-after-super-admin", "--no-diagnose", "--reports", str(tmp_path),
                   "--target-url", server.url)  # fmt: skip
    assert proc.returncode == EXIT_INFRA, proc.stdout + proc.stderr
    (run,) = tmp_path.glob("run-*")
    (result,) = json.loads((run / "results.json").read_text())["cells"]
    assert result["outcome"] == "error" and result["attempts"] == 2 and "precondition" in result["message"]


@pytest.mark.e2e
def test_a_token_endpoint_answering_html_is_infrastructure(tmp_path, scenario):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/v1/token", "maintenance")])
    with SimServer(create_app(scenario, options)) as server:
        proc = cli("run", "--approve", "--user", "super-admin", "--account", "free", "--scope-set", "crm-read",
                   "--no-diagnose", "--reports", str(tmp_path), "--target-url", server.url)  # fmt: skip
    assert proc.returncode == EXIT_INFRA, proc.stdout + proc.stderr
    (run,) = tmp_path.glob("run-*")
    (result,) = json.loads((run / "results.json").read_text())["cells"]
    assert result["outcome"] == "error" and "isn't JSON" in result["message"]


@pytest.mark.e2e
def test_credentials_are_typed_only_into_hubspots_own_origin(tmp_path, scenario: Scenario):
    """The app URL sends the browser to a login page on another origin: nothing is typed, the cell errs."""
    with SimServer(create_app(scenario, SimOptions(test_support=True))) as elsewhere:

        async def redirect(request: Request) -> Response:
            return RedirectResponse(elsewhere.url + request.url.path, status_code=302)

        front = Starlette(routes=[Route("/{path:path}", redirect)])
        with SimServer(front) as hubspot:  # type: ignore[arg-type]
            cells = MATRIX.select(users=["super-admin"], accounts=["free"], scope_sets=["crm-read"])
            choice = find_browser(headless=True)
            assert choice is not None
            engine = Engine(
                target=sim_target(MATRIX, scenario, hubspot.url, {"super-admin"}), matrix=MATRIX, run_dir=tmp_path,
                run_id="origin", flow=FlowOptions(grace_s=2.0), browser=BrowserOptions(choice.executable_path),
                concurrency=1, diagnose=False, sink=None,
            )  # fmt: skip
            engine.start()
            try:
                (result,) = engine.run_all(cells)
            finally:
                engine.stop()
        assert result.outcome is Outcome.ERROR and "not a configured HubSpot origin" in result.message
        assert elsewhere.app.simulator.state.logins == {}, "an email was submitted to the other origin"


def _finished_run(reports: Path) -> str:
    """A run whose only planned cell has its result: --resume goes straight to writing the report."""
    run = reports / "run-20261129-000000-000"
    run.mkdir(parents=True)
    (run / "plan.json").write_text(json.dumps(["super-admin@free/crm-read"]))
    done = CellResult("super-admin@free/crm-read", "super-admin", "Super admin", "free", 1000001, "crm-read",
                      ("crm.objects.contacts.read",), (), Outcome.GRANTED, expected=Outcome.GRANTED)  # fmt: skip
    (run / "results-main.jsonl").write_text(json.dumps(done.to_dict()) + "\n")
    return run.name


def test_a_full_disk_still_ends_in_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    run_id = _finished_run(tmp_path)

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("scopematrix.runs.write_report", no_space)
    assert main(["run", "--resume", run_id, "--reports", str(tmp_path)]) == EXIT_INFRA
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]


@pytest.mark.e2e
def test_a_disk_that_fills_mid_run_keeps_the_saved_cells_and_ends_in_one_line(tmp_path, monkeypatch, capsys):
    """allure-pytest's writes, then our results file, then the report all hit ENOSPC: before, pytest crashed
    with an INTERNALERROR traceback and no line said what was kept."""
    import allure_commons.logger

    from scopematrix.engine import ResultSink

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    saved = ResultSink.append
    calls = []

    def append(self: ResultSink, result: CellResult) -> None:
        calls.append(result.cell_id)
        if len(calls) > 2:
            no_space()
        saved(self, result)

    monkeypatch.setattr(ResultSink, "append", append)
    monkeypatch.setattr(allure_commons.logger.AllureFileLogger, "_report_item", no_space)
    monkeypatch.setattr("scopematrix.runs.write_report", no_space)
    rc = main(["run", "--user", "super-admin", "--no-diagnose", "--reports", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == EXIT_INFRA, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "2 finished cell(s) are kept" in lines[0]
    assert "INTERNALERROR" not in out + err and "Traceback" not in out + err
    (results,) = tmp_path.glob("run-*/results-main.jsonl")
    assert len(results.read_text().splitlines()) == 2


def test_a_corrupt_history_costs_no_report(tmp_path, capsys):
    run_id = _finished_run(tmp_path)
    (tmp_path / "history.sqlite").write_bytes(b"garbage" * 500)
    assert main(["run", "--resume", run_id, "--reports", str(tmp_path)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "run history not recorded" in captured.err
    assert (tmp_path / run_id / "index.html").is_file() and (tmp_path / run_id / "results.json").is_file()


def test_merge_names_the_cells_a_shard_never_ran(tmp_path):
    run_id = _finished_run(tmp_path)
    empty = tmp_path / "run-empty"  # a shard that failed before planning anything
    empty.mkdir()
    merged = cli("merge", str(tmp_path / run_id), str(empty), "--out", str(tmp_path / "merged"), "--all-cells")
    assert merged.returncode == EXIT_INFRA, merged.stdout + merged.stderr
    assert f"{len(MATRIX.cells()) - 1} planned cell(s) have no result" in merged.stdout
    assert "never planned their cells" in merged.stdout


def _shard(reports: Path, name: str, index: int, cells: dict[str, Outcome], whole: list[str]) -> Path:
    """A finished shard folder as `run --shard index/2` leaves it: plan, shard.json and results."""
    from scopematrix.runs import write_shard

    run = reports / name
    run.mkdir(parents=True)
    (run / "plan.json").write_text(json.dumps(list(cells)))
    write_shard(run, index, 2, whole)
    lines = [json.dumps(cell(o, cid=cid).to_dict()) for cid, o in cells.items()]
    (run / "results-main.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_merge_names_a_shard_it_was_not_given_and_its_cells(tmp_path):
    whole = ["u@a/s", "u@a/t", "v@a/s"]
    one = _shard(tmp_path, "run-1", 1, {"u@a/s": Outcome.GRANTED, "u@a/t": Outcome.GRANTED}, whole)
    merged = cli("merge", str(one), "--out", str(tmp_path / "merged"))
    assert merged.returncode == EXIT_INFRA, merged.stdout + merged.stderr
    assert "shard 2/2 was not given: its 1 cell(s) have no result" in merged.stdout
    assert "1 planned cell(s) have no result: v@a/s" in merged.stdout
    two = _shard(tmp_path, "run-2", 2, {"v@a/s": Outcome.DENIED_ACCOUNT}, whole)
    assert cli("merge", str(one), str(two), "--out", str(tmp_path / "both")).returncode == EXIT_OK


def test_merge_refuses_two_copies_of_a_shard_that_disagree_on_a_cell(tmp_path, capsys):
    whole = ["u@a/s", "v@a/s"]
    one = _shard(tmp_path, "run-1", 1, {"u@a/s": Outcome.GRANTED}, whole)
    again = _shard(tmp_path, "run-1b", 1, {"u@a/s": Outcome.DENIED_ACCOUNT}, whole)
    two = _shard(tmp_path, "run-2", 2, {"v@a/s": Outcome.GRANTED}, whole)
    assert main(["merge", str(one), str(again), str(two), "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cell u@a/s is granted in run-1 but denied_account in run-1b" in err[0], err
    assert not (tmp_path / "merged").exists()
    # An outage in one copy and a decision in the other is a re-run, not a disagreement: the decision counts.
    retried = _shard(tmp_path, "run-1c", 1, {"u@a/s": Outcome.ERROR}, whole)
    assert main(["merge", str(retried), str(one), str(two), "--out", str(tmp_path / "ok")]) == EXIT_OK


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("started_at", None, "run.started_at: Field required"),
        ("duration_s", "slow", "run.duration_s: Input should be a valid number"),
        ("cells", [{"cell_id": "u@a/s"}], "cells[0].user: Field required"),
        ("cells", "path", "no 'run' and 'cells'"),
    ],
)
def test_a_results_json_that_is_wrong_is_one_line_for_report_and_merge(tmp_path, capsys, field, value, needle):
    run = tmp_path / _finished_run(tmp_path)
    assert main(["run", "--resume", run.name, "--reports", str(tmp_path)]) == EXIT_OK
    doc = json.loads((run / "results.json").read_text())
    if field == "cells":
        doc["cells"] = value
    elif value is None:
        del doc["run"][field]
    else:
        doc["run"][field] = value
    (run / "results.json").write_text(json.dumps(doc))
    capsys.readouterr()
    merge = ["merge", str(run), "--out", str(tmp_path / "m")]
    for command in (["report", str(run)], ["report", str(run / "results.json")], merge):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0] and "results.json" in err[0], err
    assert not (tmp_path / "m").exists()


def test_a_screenshot_path_that_is_a_number_is_named(tmp_path, capsys):
    run = tmp_path / _finished_run(tmp_path)
    assert main(["run", "--resume", run.name, "--reports", str(tmp_path)]) == EXIT_OK
    doc = json.loads((run / "results.json").read_text())
    doc["cells"][0]["screenshots"] = [{"screen": "consent", "path": 5}]
    (run / "results.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    assert "cells[0].screenshots.0.path: Input should be a valid string" in capsys.readouterr().err


@pytest.mark.e2e
def test_unknown_screens_are_loud_with_a_code_of_their_own(tmp_path, scenario):
    options = SimOptions(test_support=True, faults=[Fault("/oauth/1000001/", "maintenance")])
    with SimServer(create_app(scenario, options)) as server:
        proc = cli("run", "--user", "super-admin", "--account", "free", "--scope-set", "crm-read", "--no-diagnose",
                   "--reports", str(tmp_path), "--target-url", server.url)  # fmt: skip
    assert proc.returncode == EXIT_UNKNOWN_SCREEN, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "no page object knows" in x)
    assert "page objects need updating" in line and "unrecognized.html" in line
    (run,) = tmp_path.glob("run-*")
    for attempt in (1, 2):  # the HTML and screenshot of every attempt are kept
        folder = run / "cells" / "super-admin@free--crm-read" / f"attempt-{attempt}"
        assert (folder / "unrecognized.html").is_file() and list(folder.glob("*-unknown.png")), folder


@pytest.mark.e2e
def test_a_run_leaves_other_tools_files_alone(tmp_path):
    """pytest-playwright deletes its output folder when a session starts; ours lives in the run folder."""
    theirs = tmp_path / "test-results"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("someone else's")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SCOPEMATRIX_"))}
    proc = subprocess.run([sys.executable, "-m", "scopematrix.cli", "run", "--user", "super-admin", "--account", "free",
                           "--scope-set", "crm-read", "--no-diagnose", "--reports", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=base)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (theirs / "keep.txt").read_text() == "someone else's"


@pytest.mark.parametrize("expected", [None, Outcome.ERROR, Outcome.UNRECOGNIZED])
def test_an_outage_never_passes_on_the_pytest_route_whatever_is_expected(expected):
    from scopematrix.plugin import InfrastructureTrouble, check_cell

    for outcome in (Outcome.ERROR, Outcome.UNRECOGNIZED):
        down = CellResult("u@a/s", "u", "r", "a", 1, "s", ("oauth",), (), outcome, expected=expected)
        assert not down.matches_expectation and not down.regression
        with pytest.raises(InfrastructureTrouble):
            check_cell(down)
