"""At least 30 bad inputs: each gives one line naming the problem and the fix, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scopematrix.cli import main
from scopematrix.matrix import DEFAULT_MATRIX
from scopematrix.model import Outcome
from scopematrix.simulator.scenario import DEFAULT_SCENARIO

GOOD_MATRIX = yaml.safe_load(DEFAULT_MATRIX.read_text())
GOOD_MATRIX["baseline"] = str(DEFAULT_MATRIX.parent / GOOD_MATRIX["baseline"])  # (copies are written elsewhere)
GOOD_SCENARIO = yaml.safe_load(DEFAULT_SCENARIO.read_text())


def mutate(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


MATRIX_CASES = [
    ("non-positive hub id", mutate(GOOD_MATRIX, ["accounts", 0, "hub_id"], -5), "hub_id -5 is not a Hub ID"),
    (
        "an account twice for one user",
        mutate(GOOD_MATRIX, ["users", 0, "accounts"], ["free", "enterprise", "free"]),
        "account 'free' is listed twice",
    ),
    ("a named baseline that is missing", mutate(GOOD_MATRIX, ["baseline"], "nowhere.yaml"), "'nowhere.yaml' not found"),
    ("unknown top-level key", mutate(GOOD_MATRIX, ["colour"], "red"), "remove 'colour'"),
    (
        "unknown scope",
        mutate(GOOD_MATRIX, ["scope_sets", 0, "scopes"], ["crm.objects.contact.read"]),
        "did you mean 'crm.objects.contacts.read'",
    ),
    ("empty scope set", mutate(GOOD_MATRIX, ["scope_sets", 0, "scopes"], []), "is empty"),
    ("duplicate user", mutate(GOOD_MATRIX, ["users", 1, "id"], "super-admin"), "duplicate id 'super-admin'"),
    ("unknown account ref", mutate(GOOD_MATRIX, ["users", 0, "accounts"], ["nowhere"]), "unknown account 'nowhere'"),
    ("missing apps", mutate(GOOD_MATRIX, ["apps"], KeyError), "add 'apps'"),
    ("http redirect", mutate(GOOD_MATRIX, ["apps", 0, "redirect_uri"], "http://example.com/cb"), "https"),
    ("bad env name", mutate(GOOD_MATRIX, ["users", 0, "password_env"], "1-BAD"), "environment variable name"),
    ("hub id not a number", mutate(GOOD_MATRIX, ["accounts", 0, "hub_id"], "abc"), "accounts[0].hub_id"),
    ("users not a list", mutate(GOOD_MATRIX, ["users"], "everyone"), "users"),
    ("installed_by unknown", mutate(GOOD_MATRIX, ["scope_sets", 0, "installed_by"], "ghost"), "unknown user 'ghost'"),
    ("duplicate scope set", mutate(GOOD_MATRIX, ["scope_sets", 1, "id"], "crm-read"), "duplicate id 'crm-read'"),
    ("no client id", mutate(GOOD_MATRIX, ["apps", 0, "client_id"], KeyError), "client_id"),
    ("unknown app", mutate(GOOD_MATRIX, ["scope_sets", 0, "app"], "nope"), "unknown app 'nope'"),
    ("app and apps", mutate(GOOD_MATRIX, ["app"], GOOD_MATRIX["apps"][0]), "both 'app' and 'apps'"),
    ("id with a space", mutate(GOOD_MATRIX, ["users", 0, "id"], "super admin"), "is not allowed"),
    ("id with an @", mutate(GOOD_MATRIX, ["accounts", 0, "id"], "b@enterprise"), "is not allowed"),
    ("id with a slash", mutate(GOOD_MATRIX, ["scope_sets", 0, "id"], "crm/read"), "is not allowed"),
    ("id with ANSI", mutate(GOOD_MATRIX, ["scope_sets", 0, "id"], "\x1b[31mred"), "is not allowed"),
    ("unknown app scope", mutate(GOOD_MATRIX, ["apps", 0, "scopes", "required"], ["formz"]), "did you mean 'forms'"),
    ("optional typo", mutate(GOOD_MATRIX, ["scope_sets", 2, "optional"], ["socail"]), "did you mean 'social'"),
]
SCENARIO_CASES = [
    ("scenario unknown key", mutate(GOOD_SCENARIO, ["weather"], 1), "remove 'weather'"),
    ("scenario bad tier", mutate(GOOD_SCENARIO, ["accounts", 1, "tiers"], {"marketing": "gold"}), "tiers"),
    (
        "scenario unknown permission",
        mutate(GOOD_SCENARIO, ["users", 4, "memberships", 0, "permissions"], ["Root"]),
        "unknown permission 'Root'",
    ),
    ("scenario bad switch", mutate(GOOD_SCENARIO, ["switches", "denial_page"], "2030"), "denial_page"),
    (
        "scenario unknown account",
        mutate(GOOD_SCENARIO, ["users", 0, "memberships", 0, "account"], "mars"),
        "unknown account 'mars'",
    ),
    ("scenario no redirect", mutate(GOOD_SCENARIO, ["apps", 0, "redirect_urls"], []), "at least one redirect URL"),
    (
        "scenario unknown scope",
        mutate(GOOD_SCENARIO, ["apps", 0, "scopes", "optional"], ["timelines"]),
        "did you mean 'timeline'",
    ),
]


@pytest.mark.parametrize(("name", "doc", "needle"), MATRIX_CASES, ids=[c[0] for c in MATRIX_CASES])
def test_bad_matrix_files(tmp_path, capsys, name, doc, needle):
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert main(["run", "--matrix", str(path), "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, needle, str(path))


@pytest.mark.parametrize(("name", "doc", "needle"), SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_bad_scenario_files(tmp_path, capsys, name, doc, needle):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert (
        main(["diagnose", "--scenario", str(path), "--user", "super-admin", "--account", "free", "--scopes", "forms"])
        == 2
    )
    assert_one_line(capsys, needle, str(path))


CLI_CASES = [
    (["run", "--concurrency", "0"], "at least 1"),
    (["run", "--concurrency", "many"], "at least 1"),
    (["run", "--shard", "4/3"], "shard like 1/3"),
    (["run", "--target", "prod"], "invalid choice"),
    (["run", "--user", "nobody"], "no user matches 'nobody'"),
    (["run", "--scope-set", "nothing"], "no scope set matches 'nothing'"),
    (["run", "--resume", "run-missing"], "run 'run-missing' not found"),
    (["run", "--matrix", "/no/such.yaml"], "file not found"),
    (["run", "--timeout", "-1"], "negative"),
    (["run", "--timeout", "0"], "more than 0"),
    (["run", "--timeout", "nan"], "not a finite number"),
    (["run", "--grace", "inf"], "not a finite number"),
    (["run", "--latency", "nan"], "not a finite number"),
    (["run", "--resume", "../../etc"], "is not a run id"),
    (["run", "--resume", "/tmp/run-1"], "is not a run id"),
    (["run", "--connect", "ws://127.0.0.1:9/"], "nothing answers there"),
    (["run", "--connect", "http://x"], "is not a ws:// URL"),
    (["run", "--env-file", "/no/such.env"], "env file not found"),
    (["run", "--user", "restricted", "--account", "free"], "no cell matches: nothing to run"),
    (["run", "--user", "super-admin", "--shard", "2/2"], "shard 2/2 gets no user"),
    (["frobnicate"], "invalid choice"),
    (["report", "/no/such/results.json"], "not found"),
    (["diagnose", "--user", "ghost", "--account", "free", "--scopes", "forms"], "unknown user 'ghost'"),
    (["diagnose", "--user", "super-admin", "--account", "free", "--scopes", "formz"], "forms"),
    (["sim", "--port", "70000"], "out of range"),
    (["run", "-k", "("], "-k '(' is not a pytest expression"),
    (["run", "-m", "and"], "-m 'and' is not a pytest expression"),
    (["run", "--maxfail", "abc"], "--maxfail 'abc' is not a number"),
    (["run", "--maxfail=-1"], "--maxfail '-1' is not a number"),
    (["run", "--screenshot", "always"], "is not one of on, off, only-on-failure"),
]


@pytest.mark.parametrize(("argv", "needle"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_cli_values(tmp_path, capsys, argv, needle):
    if argv[0] == "run":
        argv = [*argv, "--reports", str(tmp_path / "r")]
    assert main(argv) == 2
    assert_one_line(capsys, needle)
    assert not (tmp_path / "r").exists()  # nothing written: no run folder, no history row


APPS_ENV = {
    "SCOPEMATRIX_CLIENT_SECRET": "x",
    "SCOPEMATRIX_CRM_CLIENT_SECRET": "x",
    "SCOPEMATRIX_PROBE_CLIENT_SECRET": "x",
}
LIVE_ENV_CASES = [
    ({}, "SCOPEMATRIX_CLIENT_SECRET"),
    ({"SCOPEMATRIX_CLIENT_SECRET": "x"}, "SCOPEMATRIX_CRM_CLIENT_SECRET"),
    (APPS_ENV, "SM_SUPER_ADMIN_EMAIL"),
    ({**APPS_ENV, "SM_SUPER_ADMIN_EMAIL": "a@b.c"}, "SM_SUPER_ADMIN_PASSWORD"),
    (
        {
            **APPS_ENV,
            "SCOPEMATRIX_APP_URL": "ftp://nope",
            "SM_SUPER_ADMIN_EMAIL": "a@b.c",
            "SM_SUPER_ADMIN_PASSWORD": "p",
        },
        "SCOPEMATRIX_APP_URL",
    ),  # fmt: skip
    (
        {
            **APPS_ENV,
            "SM_TOTP_ADMIN_EMAIL": "a@b.c",
            "SM_TOTP_ADMIN_PASSWORD": "p",
            "SM_SUPER_ADMIN_EMAIL": "s@b.c",  # diagnosis asks the account's super admin too
            "SM_SUPER_ADMIN_PASSWORD": "p",
        },
        "SM_TOTP_ADMIN_TOTP_SECRET",
    ),
]


@pytest.mark.parametrize(("env", "needle"), LIVE_ENV_CASES)
def test_missing_live_environment_is_named_before_any_browser(tmp_path, monkeypatch, capsys, env, needle):
    for key in [k for k in list(__import__("os").environ) if k.startswith(("SM_", "SCOPEMATRIX_"))]:
        monkeypatch.delenv(key)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    user = "totp-admin" if "TOTP" in needle else "super-admin"
    argv = ["run", "--target", "live", "--user", user, "--matrix", str(DEFAULT_MATRIX), "--reports", str(tmp_path)]
    assert main(argv) == 2
    assert_one_line(capsys, needle)


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        (
            "alias bomb",
            "a: &a [x,x,x,x,x,x,x,x,x]\n"
            + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(7)),
            "expands to more than",
        ),
        ("many aliases", "a: &a 1\nb: [" + ",".join(["*a"] * 200) + "]\n", "more than 100 YAML aliases"),
        ("deep nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels"),
        ("not UTF-8", "app: caf\udce9\n", "not UTF-8 text"),
    ],
)
def test_hostile_yaml_is_refused_quickly_in_one_line(tmp_path, capsys, name, text, needle):
    path = tmp_path / "m.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    reports = tmp_path / "r"
    assert main(["run", "--matrix", str(path), "--reports", str(reports)]) == 2
    assert_one_line(capsys, needle)
    assert not reports.exists()


def test_a_non_utf8_scenario_and_env_file_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.write_bytes(b"seed: caf\xe9\n")
    assert main(["run", "--scenario", str(bad), "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, "not UTF-8 text")
    assert main(["run", "--env-file", str(bad), "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, "not UTF-8 text")
    assert not (tmp_path / "r").exists()


def test_no_browser_is_named_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCOPEMATRIX_CHROMIUM", "/nonexistent")
    argv = ["run", "--user", "restricted", "--account", "enterprise", "--scope-set", "crm-read", "--no-diagnose"]
    assert main([*argv, "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, "SCOPEMATRIX_CHROMIUM=/nonexistent")
    assert not (tmp_path / "r").exists()


def test_a_storage_state_that_is_not_json_is_refused(tmp_path, monkeypatch, capsys):
    matrix = mutate(GOOD_MATRIX, ["users", 0, "storage_state_env"], "SM_STATE")
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(matrix))
    (tmp_path / "state.json").write_text("not json")
    monkeypatch.setenv("SM_STATE", str(tmp_path / "state.json"))
    argv = ["run", "--matrix", str(tmp_path / "m.yaml"), "--user", "super-admin", "--reports", str(tmp_path / "r")]
    assert main(argv) == 2
    assert_one_line(capsys, "not a Playwright storage state")


def test_a_corrupt_history_is_one_line_for_history_and_diff(tmp_path, capsys):
    (tmp_path / "history.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["history", "--reports", str(tmp_path)]) == 2
    assert_one_line(capsys, "not a readable run history")
    assert main(["diff", "a", "b", "--reports", str(tmp_path)]) == 2
    assert_one_line(capsys, "not a readable run history")


def test_merge_refuses_a_shard_twice_and_an_existing_out(tmp_path, capsys):
    shard = tmp_path / "run-1"
    shard.mkdir()
    assert main(["merge", str(shard), str(shard)]) == 2
    assert_one_line(capsys, "the same shard is given twice")
    (tmp_path / "taken").write_text("x")
    assert main(["merge", str(shard), "--out", str(tmp_path / "taken")]) == 2
    assert_one_line(capsys, "already exists")
    assert main(["merge", str(shard), "--out", str(shard)]) == 2
    assert_one_line(capsys, "is one of the shards")


def test_malformed_yaml_names_the_line(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("app:\n  name: [unclosed\nusers: []\n")
    assert main(["run", "--matrix", str(path)]) == 2
    assert_one_line(capsys, "malformed YAML", f"{path}:")


def test_unwritable_report_folder_is_refused_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--reports", str(blocker / "sub")]) == 2
    assert_one_line(capsys, "not writable")


def assert_one_line(capsys, *needles: str) -> None:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Fix:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_env_example_documents_every_variable_of_the_matrix():
    text = (Path(__file__).parents[1] / ".env.example").read_text()
    for key in ("email_env", "password_env", "totp_secret_env"):
        for user in GOOD_MATRIX["users"]:
            if user.get(key):
                assert user[key] in text
    assert "SCOPEMATRIX_CLIENT_SECRET" in text and "SCOPEMATRIX_APP_URL" in text


def test_a_duplicate_yaml_key_is_refused_with_both_lines(tmp_path, capsys):
    """YAML keeps the second `scope_sets:` silently, dropping the first: refused instead."""
    text = DEFAULT_MATRIX.read_text().replace(
        "baseline: baseline.yaml", f"baseline: {DEFAULT_MATRIX.parent / 'baseline.yaml'}"
    )
    text += "scope_sets:\n  - {id: extra, scopes: [oauth, forms, content]}\n"
    (tmp_path / "m.yaml").write_text(text)
    assert main(["run", "--matrix", str(tmp_path / "m.yaml"), "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, "'scope_sets' is given twice (lines")
    assert not (tmp_path / "r").exists()


def test_a_baseline_that_expects_two_outcomes_of_one_cell_is_refused(tmp_path, capsys):
    entries = [{"cell": "super-admin@free/crm-read", "outcome": o} for o in ("granted", "denied_account")]
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"version": 1, "expectations": entries}))
    argv = ["run", "--baseline", str(tmp_path / "b.yaml"), "--reports", str(tmp_path / "r")]
    assert main(argv) == 2
    assert_one_line(capsys, "'super-admin@free/crm-read' is expected both granted and denied_account")


def test_resuming_a_run_that_planned_nothing_is_a_usage_error(tmp_path, capsys):
    run = tmp_path / "run-20261207-000000-000"
    run.mkdir()
    (run / "plan.json").write_text("[]")
    assert main(["run", "--resume", run.name, "--reports", str(tmp_path)]) == 2
    assert_one_line(capsys, "planned no cell")


def test_a_baseline_cannot_expect_an_outage(tmp_path, capsys):
    entries = [{"cell": "super-admin@free/crm-read", "outcome": "error"}]
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"version": 1, "expectations": entries}))
    assert main(["run", "--baseline", str(tmp_path / "b.yaml"), "--reports", str(tmp_path / "r")]) == 2
    assert_one_line(capsys, "can't be error")


def test_a_results_file_that_is_not_ours_is_one_line_in_resume_and_merge(tmp_path, capsys):
    run = tmp_path / "run-20261207-000000-001"
    run.mkdir()
    (run / "plan.json").write_text('["super-admin@free/crm-read"]')
    (run / "results-main.jsonl").write_bytes(b"\xff\xfe not utf-8\n")
    assert main(["run", "--resume", run.name, "--reports", str(tmp_path)]) == 2
    assert_one_line(capsys, "results-main.jsonl: not a scopematrix results file")
    (run / "results-main.jsonl").write_text('{"cell_id": 1}\n{"also": "wrong"}\n')
    assert main(["merge", str(run), "--out", str(tmp_path / "merged")]) == 2
    assert_one_line(capsys, "results-main.jsonl:1: not a scopematrix result record")


def test_a_history_row_with_an_unknown_outcome_is_skipped_with_a_warning(tmp_path, capsys):
    import sqlite3

    from scopematrix.history import History

    History(tmp_path / "history.sqlite").close()
    db = sqlite3.connect(tmp_path / "history.sqlite")
    db.execute("INSERT INTO runs VALUES ('run-a', '2026-12-01T00:00:00', 'sim', 'x', 1, 1.0, 0)")
    db.execute("INSERT INTO cells (run_id, cell_id, outcome) VALUES ('run-a', 'u@a/s', 'teleported')")
    db.execute("INSERT INTO cells (run_id, cell_id, outcome) VALUES ('run-a', 'u@a/t', 'granted')")
    db.commit()
    db.close()
    history = History(tmp_path / "history.sqlite")
    assert history.outcomes("run-a") == {"u@a/t": Outcome.GRANTED}
    assert "unknown outcome 'teleported'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["login", "--user", "super-admin"], "xvfb-run -a scopematrix login --user super-admin"),
        (["run", "--headed", "--user", "super-admin"], "xvfb-run -a scopematrix run --headed"),
    ],
)
def test_a_headed_browser_without_a_screen_says_to_use_xvfb_run(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if argv[0] == "run":
        argv = [*argv, "--reports", str(tmp_path / "r")]
    assert main(argv) == 2
    assert_one_line(capsys, needle)
    assert not (tmp_path / "r").exists() and not Path(".auth/super-admin.json").exists()


def test_the_program_exits_with_main_s_code_and_leaves_its_heap_to_the_os(tmp_path):
    """`scopematrix` (the console script and `python -m scopematrix.cli`) is `main` plus a frozen heap: the same
    one line and exit code, and no last collection at interpreter exit."""
    import subprocess
    import sys

    code = (
        "import gc, sys\n"
        "from scopematrix.cli import entry\n"
        "sys.argv = ['scopematrix', 'history', '--reports', sys.argv[1], '--bogus']\n"
        "rc = entry()\n"
        "print(rc, gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["2", "True"], proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "scopematrix:" in proc.stderr
    cli = subprocess.run([sys.executable, "-m", "scopematrix.cli", "history", "--bogus"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written
