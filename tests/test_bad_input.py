"""At least 30 bad inputs: each gives one line naming the problem and the fix, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scopematrix.cli import main
from scopematrix.matrix import DEFAULT_MATRIX
from scopematrix.simulator.scenario import DEFAULT_SCENARIO

GOOD_MATRIX = yaml.safe_load(DEFAULT_MATRIX.read_text())
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
    ("unknown top-level key", mutate(GOOD_MATRIX, ["colour"], "red"), "remove 'colour'"),
    (
        "unknown scope",
        mutate(GOOD_MATRIX, ["scope_sets", 0, "scopes"], ["crm.objects.contact.read"]),
        "did you mean 'crm.objects.contacts.read'",
    ),
    ("empty scope set", mutate(GOOD_MATRIX, ["scope_sets", 0, "scopes"], []), "is empty"),
    ("duplicate user", mutate(GOOD_MATRIX, ["users", 1, "id"], "super-admin"), "duplicate id 'super-admin'"),
    ("unknown account ref", mutate(GOOD_MATRIX, ["users", 0, "accounts"], ["nowhere"]), "unknown account 'nowhere'"),
    ("missing app", mutate(GOOD_MATRIX, ["app"], KeyError), "add 'app'"),
    ("http redirect", mutate(GOOD_MATRIX, ["app", "redirect_uri"], "http://example.com/cb"), "https"),
    ("bad env name", mutate(GOOD_MATRIX, ["users", 0, "password_env"], "1-BAD"), "environment variable name"),
    ("hub id not a number", mutate(GOOD_MATRIX, ["accounts", 0, "hub_id"], "abc"), "accounts[0].hub_id"),
    ("users not a list", mutate(GOOD_MATRIX, ["users"], "everyone"), "users"),
    ("installed_by unknown", mutate(GOOD_MATRIX, ["scope_sets", 0, "installed_by"], "ghost"), "unknown user 'ghost'"),
    ("duplicate scope set", mutate(GOOD_MATRIX, ["scope_sets", 1, "id"], "crm-read"), "duplicate id 'crm-read'"),
    ("no client id", mutate(GOOD_MATRIX, ["app", "client_id"], KeyError), "client_id"),
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
    (["frobnicate"], "invalid choice"),
    (["report", "/no/such/results.json"], "not found"),
    (["diagnose", "--user", "ghost", "--account", "free", "--scopes", "forms"], "unknown user 'ghost'"),
    (["diagnose", "--user", "super-admin", "--account", "free", "--scopes", "formz"], "forms"),
    (["sim", "--port", "70000"], "out of range"),
]


@pytest.mark.parametrize(("argv", "needle"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_cli_values(tmp_path, capsys, argv, needle):
    if argv[0] == "run":
        argv = [*argv, "--reports", str(tmp_path / "r")]
    assert main(argv) == 2
    assert_one_line(capsys, needle)


LIVE_ENV_CASES = [
    ({}, "SCOPEMATRIX_CLIENT_SECRET"),
    ({"SCOPEMATRIX_CLIENT_SECRET": "x"}, "SM_SUPER_ADMIN_EMAIL"),
    ({"SCOPEMATRIX_CLIENT_SECRET": "x", "SM_SUPER_ADMIN_EMAIL": "a@b.c"}, "SM_SUPER_ADMIN_PASSWORD"),
    (
        {
            "SCOPEMATRIX_CLIENT_SECRET": "x",
            "SCOPEMATRIX_APP_URL": "ftp://nope",
            "SM_SUPER_ADMIN_EMAIL": "a@b.c",
            "SM_SUPER_ADMIN_PASSWORD": "p",
        },
        "SCOPEMATRIX_APP_URL",
    ),
    (
        {
            "SCOPEMATRIX_CLIENT_SECRET": "x",
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
