"""The matrix as data: apps, accounts, users, scope sets and expectations, expanded into cells."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import field_validator, model_validator

from scopematrix.config import Strict, fail, known_scopes, load_yaml, unique_ids, validate
from scopematrix.errors import UsageError
from scopematrix.model import Outcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEFAULT_MATRIX = FIXTURES / "matrix.yaml"
# Ids name folders, report rows and pytest ids: no spaces, no '@' or '/' (the cell id's separators).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64"


def _env_name(value: str | None) -> str | None:
    if value is not None and (not value or not value.replace("_", "").isalnum() or value[0].isdigit()):
        raise fail(f"'{value}' is not an environment variable name", "use letters, digits and underscores.")
    return value


def _id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise fail(f"id {value!r} is not allowed", f"use {ID_RULE} characters.")
    return value


def _redirect(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://localhost")):
        raise fail(f"redirect_uri '{value}' is not https", "HubSpot accepts https, or http only for localhost.")
    return value


class AppScopes(Strict):
    """The app's scope settings as configured in HubSpot (its auth settings or app-hsmeta.json)."""

    required: list[str] = []
    conditional: list[str] = []
    optional: list[str] = []

    _v = field_validator("required", "conditional", "optional")(known_scopes)

    def allows(self, scope: Sequence[str], optional: Sequence[str]) -> bool:
        """Would HubSpot accept this install URL for these settings (brief section 3, "Scope types")?

        A URL that carries every declared required scope is valid under every reading of HubSpot; nothing
        is taken as implied (`oauth` neither: open question 11)."""
        return (
            all(s in scope for s in self.required)
            and all(s in {*self.required, *self.conditional} for s in scope)
            and all(s in self.optional for s in optional)
        )


class AppEntry(Strict):
    id: str = "app"
    name: str
    client_id: str | None = None
    client_id_env: str | None = None
    client_secret_env: str = "SCOPEMATRIX_CLIENT_SECRET"
    redirect_uri: str
    # The app's scope settings. Diagnosis sends only install URLs these settings accept; without them it
    # cannot tell a required scope from a droppable one, and says so when HubSpot refuses a probe.
    scopes: AppScopes | None = None

    _env = field_validator("client_id_env", "client_secret_env")(_env_name)
    _ids = field_validator("id")(_id)
    _redirect_ok = field_validator("redirect_uri")(_redirect)

    @model_validator(mode="after")
    def _client(self) -> AppEntry:
        if not self.client_id and not self.client_id_env:
            raise fail(f"app '{self.id}' needs client_id or client_id_env", "add client_id: <your app's client id>.")
        return self


class AccountEntry(Strict):
    id: str
    hub_id: int
    label: str = ""
    # The account's name as HubSpot shows it in the account picker (used when a row shows no Hub ID).
    name: str = ""
    # Its products as a customer would name them (hub: tier; a hub not named is free), for `explain` and the
    # troubleshooting page. Not given: the account is not described to customers.
    products: dict[str, str] | None = None

    _ids = field_validator("id")(_id)

    @field_validator("products")
    @classmethod
    def _products(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        from scopematrix.answers.profile import HUBS, TIERS

        for hub, tier in (value or {}).items():
            if hub not in HUBS:
                raise fail(f"unknown hub '{hub}'", f"use one of: {', '.join(HUBS)}.")
            if tier not in TIERS:
                raise fail(f"unknown tier '{tier}' for {hub}", f"use one of: {', '.join(TIERS)}.")
        return value

    @field_validator("hub_id")
    @classmethod
    def _hub(cls, value: int) -> int:
        if value < 1:
            raise fail(f"hub_id {value} is not a Hub ID", "use the account's Hub ID, a positive number.")
        return value


class UserEntry(Strict):
    id: str
    role: str
    super_admin: bool = False
    accounts: list[str]
    email_env: str
    password_env: str
    totp_secret_env: str | None = None
    storage_state_env: str | None = None
    # What kind of HubSpot user this is, as a customer would say it (for `explain` and the troubleshooting
    # page): super_admin, admin_marketplace, admin, restricted or deactivated. Default: super_admin for a
    # super admin, otherwise not described to customers.
    customer_role: str | None = None

    _env = field_validator("email_env", "password_env", "totp_secret_env", "storage_state_env")(_env_name)
    _ids = field_validator("id")(_id)

    @field_validator("customer_role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        from scopematrix.answers.profile import ROLES

        if value is not None and value not in ROLES:
            raise fail(f"unknown customer_role '{value}'", f"use one of: {', '.join(ROLES)}.")
        return value

    @property
    def customer_kind(self) -> str:
        return self.customer_role or ("super_admin" if self.super_admin else "")

    @field_validator("accounts")
    @classmethod
    def _once(cls, accounts: list[str]) -> list[str]:
        twice = sorted({a for a in accounts if accounts.count(a) > 1})
        if twice:
            raise fail(f"account '{twice[0]}' is listed twice", "list each account of a user once.")
        return accounts


class ScopeSetEntry(Strict):
    id: str
    # The app whose install URL this is (an id from `apps`); default: the first app.
    app: str | None = None
    scopes: list[str]
    optional: list[str] = []
    # A precondition: this user approves the same scopes first (the classic super-admin-first case).
    installed_by: str | None = None
    description: str = ""
    # Send scope names HubSpot doesn't know (to test the "invalid scope" screen).
    allow_invalid: bool = False
    # Deliberate misconfigurations: another client_id or redirect_uri than the app's.
    client_id: str | None = None
    redirect_uri: str | None = None

    _ids = field_validator("id")(_id)

    @model_validator(mode="after")
    def _check(self) -> ScopeSetEntry:
        if not self.scopes and not self.optional:
            raise fail(f"scope set '{self.id}' is empty", "list at least one scope under scopes.")
        if not self.allow_invalid:
            known_scopes(self.scopes)
            known_scopes(self.optional)
        return self


class MatrixSpec(Strict):
    apps: list[AppEntry]
    # A test app whose settings list every candidate scope as conditionally required: diagnosis probes
    # with it, so that any subset of scopes is a valid install URL.
    probe_app: AppEntry | None = None
    accounts: list[AccountEntry]
    users: list[UserEntry]
    scope_sets: list[ScopeSetEntry]
    baseline: str | None = "baseline.yaml"
    pinned: bool = True  # authorize through /oauth/{hubId}/authorize; False goes through the picker

    @model_validator(mode="before")
    @classmethod
    def _one_app(cls, data: Any) -> Any:
        """`app:` (one app) is shorthand for `apps:` with one entry."""
        if isinstance(data, dict) and "app" in data:
            if "apps" in data:
                raise fail("both 'app' and 'apps' are given", "keep one: 'apps' is a list of apps.")
            data = {**data, "apps": [data["app"]]}
            del data["app"]
        return data

    @model_validator(mode="after")
    def _refs(self) -> MatrixSpec:
        if not self.apps:
            raise fail("no app is configured", "add one under apps:.")
        unique_ids("apps", [a.id for a in self.apps] + ([self.probe_app.id] if self.probe_app else []))
        unique_ids("accounts", [a.id for a in self.accounts])
        unique_ids("users", [u.id for u in self.users])
        unique_ids("scope_sets", [s.id for s in self.scope_sets])
        accounts = {a.id for a in self.accounts}
        users = {u.id for u in self.users}
        apps = {a.id for a in self.apps}
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
            if s.app is not None and s.app not in apps:
                raise fail(f"scope set '{s.id}' names unknown app '{s.app}'", f"use one of: {', '.join(apps)}.")
        return self


class ExpectationEntry(Strict):
    cell: str  # a cell id, or a glob like "restricted@*/*"
    outcome: Outcome
    reason: str = ""
    must_install: bool = False

    @field_validator("outcome")
    @classmethod
    def _decided(cls, outcome: Outcome) -> Outcome:
        if outcome.infrastructure:
            raise fail(f"an expected outcome can't be {outcome.value}: an outage or unknown screen decides nothing",
                       "expect what HubSpot decides (granted, denied_*, …), or drop the entry.")  # fmt: skip
        return outcome


class BaselineSpec(Strict):
    version: int = 1
    expectations: list[ExpectationEntry] = []

    @model_validator(mode="after")
    def _consistent(self) -> BaselineSpec:
        said: dict[str, Outcome] = {}
        for e in self.expectations:
            if e.cell in said and said[e.cell] is not e.outcome:
                raise fail(f"cell '{e.cell}' is expected both {said[e.cell].value} and {e.outcome.value}",
                           "keep one expectation per cell.")  # fmt: skip
            said[e.cell] = e.outcome
        return self


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
        """The first (main) app."""
        return self.spec.apps[0]

    @property
    def apps(self) -> dict[str, AppEntry]:
        """Every app by id, the probe app included."""
        apps = {a.id: a for a in self.spec.apps}
        if self.spec.probe_app is not None:
            apps[self.spec.probe_app.id] = self.spec.probe_app
        return apps

    def app_of(self, scope_set: ScopeSetEntry) -> AppEntry:
        return self.apps[scope_set.app] if scope_set.app else self.app

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

    def apps_needed(self, cells: Sequence[Cell], diagnose: bool = True) -> set[str]:
        """The apps whose client id and secret the cells need: their own, and the probe app to diagnose."""
        needed = {self.app_of(c.scope_set).id for c in cells}
        if diagnose and self.spec.probe_app is not None:
            needed.add(self.spec.probe_app.id)
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
    elif bpath is not None and "baseline" in spec.model_fields_set:
        raise UsageError(f"{path}: baseline '{spec.baseline}' not found.",
                         "create it (scopematrix run --update-baseline) or set baseline: null.")  # fmt: skip
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
