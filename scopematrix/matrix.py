"""The matrix as data: app, accounts, users, scope sets and expectations, expanded into cells."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import field_validator, model_validator

from scopematrix.config import Strict, fail, known_scopes, load_yaml, unique_ids, validate
from scopematrix.errors import UsageError
from scopematrix.model import Outcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEFAULT_MATRIX = FIXTURES / "matrix.yaml"


def _env_name(value: str | None) -> str | None:
    if value is not None and (not value or not value.replace("_", "").isalnum() or value[0].isdigit()):
        raise fail(f"'{value}' is not an environment variable name", "use letters, digits and underscores.")
    return value


class AppEntry(Strict):
    name: str
    client_id: str | None = None
    client_id_env: str | None = None
    client_secret_env: str = "SCOPEMATRIX_CLIENT_SECRET"
    redirect_uri: str

    _env = field_validator("client_id_env", "client_secret_env")(_env_name)

    @field_validator("redirect_uri")
    @classmethod
    def _redirect(cls, value: str) -> str:
        if not value.startswith(("https://", "http://localhost")):
            raise fail(f"redirect_uri '{value}' is not https", "HubSpot accepts https, or http only for localhost.")
        return value

    @model_validator(mode="after")
    def _client(self) -> AppEntry:
        if not self.client_id and not self.client_id_env:
            raise fail("the app needs client_id or client_id_env", "add client_id: <your app's client id>.")
        return self


class AccountEntry(Strict):
    id: str
    hub_id: int
    label: str = ""


class UserEntry(Strict):
    id: str
    role: str
    super_admin: bool = False
    accounts: list[str]
    email_env: str
    password_env: str
    totp_secret_env: str | None = None
    storage_state_env: str | None = None

    _env = field_validator("email_env", "password_env", "totp_secret_env", "storage_state_env")(_env_name)


class ScopeSetEntry(Strict):
    id: str
    scopes: list[str]
    optional: list[str] = []
    # A precondition: this user approves the same scopes first (the classic super-admin-first case).
    installed_by: str | None = None
    description: str = ""
    allow_invalid: bool = False

    @model_validator(mode="after")
    def _check(self) -> ScopeSetEntry:
        if not self.scopes and not self.optional:
            raise fail(f"scope set '{self.id}' is empty", "list at least one scope under scopes.")
        if not self.allow_invalid:
            known_scopes(self.scopes)
            known_scopes(self.optional)
        return self


class MatrixSpec(Strict):
    app: AppEntry
    accounts: list[AccountEntry]
    users: list[UserEntry]
    scope_sets: list[ScopeSetEntry]
    baseline: str | None = "baseline.yaml"
    pinned: bool = True  # authorize through /oauth/{hubId}/authorize; False goes through the picker

    @model_validator(mode="after")
    def _refs(self) -> MatrixSpec:
        unique_ids("accounts", [a.id for a in self.accounts])
        unique_ids("users", [u.id for u in self.users])
        unique_ids("scope_sets", [s.id for s in self.scope_sets])
        accounts = {a.id for a in self.accounts}
        users = {u.id for u in self.users}
        for user in self.users:
            for acc in user.accounts:
                if acc not in accounts:
                    raise fail(
                        f"user '{user.id}' refers to unknown account '{acc}'",
                        f"use one of: {', '.join(sorted(accounts))}.",
                    )
        for s in self.scope_sets:
            if s.installed_by is not None and s.installed_by not in users:
                raise fail(f"scope set '{s.id}' is installed_by unknown user '{s.installed_by}'", "name a user id.")
        return self


class ExpectationEntry(Strict):
    cell: str  # a cell id, or a glob like "restricted@*/*"
    outcome: Outcome
    reason: str = ""
    must_install: bool = False


class BaselineSpec(Strict):
    version: int = 1
    expectations: list[ExpectationEntry] = []


@dataclass(frozen=True)
class Cell:
    user: UserEntry
    account: AccountEntry
    scope_set: ScopeSetEntry

    @property
    def id(self) -> str:
        return f"{self.user.id}@{self.account.id}/{self.scope_set.id}"


@dataclass(frozen=True)
class Expectation:
    outcome: Outcome
    reason: str
    pattern: str
    must_install: bool


class Matrix:
    def __init__(self, spec: MatrixSpec, source: Path, baseline: BaselineSpec | None, baseline_path: Path | None):
        self.spec = spec
        self.source = source
        self.baseline = baseline
        self.baseline_path = baseline_path

    @property
    def app(self) -> AppEntry:
        return self.spec.app

    def user(self, user_id: str) -> UserEntry:
        return next(u for u in self.spec.users if u.id == user_id)

    def account(self, account_id: str) -> AccountEntry:
        return next(a for a in self.spec.accounts if a.id == account_id)

    def cells(self) -> list[Cell]:
        accounts = {a.id: a for a in self.spec.accounts}
        return [
            Cell(user, accounts[acc], scope_set)
            for user in self.spec.users
            for acc in user.accounts
            for scope_set in self.spec.scope_sets
        ]

    def select(
        self, users: Sequence[str] = (), accounts: Sequence[str] = (), scope_sets: Sequence[str] = ()
    ) -> list[Cell]:
        for kind, wanted, known in (
            ("user", users, [u.id for u in self.spec.users]),
            ("account", accounts, [a.id for a in self.spec.accounts]),
            ("scope set", scope_sets, [s.id for s in self.spec.scope_sets]),
        ):
            for w in wanted:
                if not fnmatch.filter(known, w):
                    raise UsageError(f"no {kind} matches '{w}'.", f"use one of: {', '.join(known)}.")

        def keep(value: str, wanted: Sequence[str]) -> bool:
            return not wanted or any(fnmatch.fnmatchcase(value, w) for w in wanted)

        return [
            c
            for c in self.cells()
            if keep(c.user.id, users) and keep(c.account.id, accounts) and keep(c.scope_set.id, scope_sets)
        ]

    def users_needed(self, cells: Sequence[Cell], diagnose: bool = True) -> set[str]:
        """Users whose credentials the cells need: their own, installed_by, and with diagnosis the super
        admins of their accounts (asked whether the account or the user is at fault)."""
        needed = {c.user.id for c in cells} | {c.scope_set.installed_by for c in cells if c.scope_set.installed_by}
        if not diagnose:
            return needed
        accounts = {c.account.id for c in cells}
        needed |= {u.id for u in self.spec.users if u.super_admin and accounts & set(u.accounts)}
        return needed

    def expectation(self, cell_id: str) -> Expectation | None:
        if self.baseline is None:
            return None
        exact = [e for e in self.baseline.expectations if e.cell == cell_id]
        entries = exact or [e for e in self.baseline.expectations if fnmatch.fnmatchcase(cell_id, e.cell)]
        if not entries:
            return None
        e = entries[0]
        return Expectation(e.outcome, e.reason, e.cell, e.must_install)

    def stale_expectations(self) -> list[str]:
        if self.baseline is None:
            return []
        ids = [c.id for c in self.cells()]
        return [e.cell for e in self.baseline.expectations if not fnmatch.filter(ids, e.cell)]


def load_matrix(path: Path | None = None, baseline: Path | None = None) -> Matrix:
    path = path or DEFAULT_MATRIX
    data, lines = load_yaml(path)
    spec = validate(MatrixSpec, data, path, lines)
    bpath = baseline or (path.parent / spec.baseline if spec.baseline else None)
    bspec = None
    if bpath is not None and bpath.is_file():
        bdata, blines = load_yaml(bpath)
        bspec = validate(BaselineSpec, bdata or {"expectations": []}, bpath, blines)
    elif baseline is not None:
        raise UsageError(f"{baseline}: baseline file not found.", "pass an existing file or omit --baseline.")
    return Matrix(spec, path, bspec, bpath)


def write_baseline(path: Path, entries: Iterable[tuple[str, Outcome, str, bool]]) -> None:
    """Write expectations, one per cell, sorted, keeping reasons given before."""
    data = {
        "version": 1,
        "expectations": [
            {"cell": cid, "outcome": out.value, "reason": reason, **({"must_install": True} if must else {})}
            for cid, out, reason, must in sorted(entries)
        ],
    }
    header = "# Expected outcome per cell. Created and updated by `scopematrix run --update-baseline`.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
