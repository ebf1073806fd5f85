"""Simulator scenarios as YAML: HubSpot's side of the world (apps, accounts, users, switches)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from faker import Faker
from pydantic import field_validator, model_validator

from scopematrix.config import Strict, fail, known_scopes, load_yaml, unique_ids, validate
from scopematrix.rules import catalog
from scopematrix.rules.model import Account, AppConfig, Hub, Membership, Switches, Tier, User

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "fixtures" / "scenario.yaml"


class ScopesSpec(Strict):
    required: list[str] = ["oauth"]
    conditional: list[str] = []
    optional: list[str] = []

    _v = field_validator("required", "conditional", "optional")(known_scopes)


class AppSpec(Strict):
    name: str
    client_id: str
    client_secret: str
    redirect_urls: list[str]
    scopes: ScopesSpec = ScopesSpec()
    aup_signed: bool = True
    app_id: int = 1

    @field_validator("redirect_urls")
    @classmethod
    def _redirects(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise fail("an app needs at least one redirect URL", "add one, e.g. https://example.com/callback.")
        return urls


class AccountSpec(Strict):
    id: str
    hub_id: int
    name: str | None = None
    tiers: dict[Hub, Tier] = {}
    add_ons: list[str] = []
    sensitive_data: bool = False
    app_governance: bool = False
    test_account: bool = False
    # Apps installed in the account before the run: client_id -> the scopes approved for it.
    installed: dict[str, list[str]] = {}

    @field_validator("installed")
    @classmethod
    def _installed_scopes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {client: known_scopes(scopes) for client, scopes in value.items()}


class MembershipSpec(Strict):
    account: str
    super_admin: bool = False
    admin: bool = False
    marketplace_access: bool = False
    # "all", or a list of permission names from scopematrix.rules.catalog.
    permissions: Literal["all"] | list[str] = []

    @field_validator("permissions")
    @classmethod
    def _perms(cls, value: Literal["all"] | list[str]) -> Literal["all"] | list[str]:
        if isinstance(value, list):
            for perm in value:
                if perm not in catalog.ALL_PERMISSIONS:
                    raise fail(f"unknown permission '{perm}'", "use a name from scopematrix/rules/catalog.py.")
        return value


class UserSpec(Strict):
    id: str
    email: str | None = None
    name: str | None = None
    password: str
    totp_secret: str | None = None
    deactivated: bool = False
    memberships: list[MembershipSpec]


class SwitchesSpec(Strict):
    """Every point where the research brief is silent, disputed or "unconfirmed" (README "Open questions"):
    each setting is a reading of HubSpot the harness must be right under."""

    super_admin_bypasses_tier: bool = False
    denial_page: Literal["legacy", "2026"] = "2026"
    consent_button: Literal["Connect app", "Grant access"] = "Connect app"
    totp_required: bool = True
    oauth: Literal["implied", "required"] = "implied"
    approvals: Literal["per_app", "per_account"] = "per_app"
    # How screens are drawn (same texts, other tags, nesting and lists): classic | plain | nested.
    markup: Literal["classic", "plain", "nested"] = "classic"
    picker: Literal["links", "rows", "dropdown"] = "links"
    consent_list: Literal["descriptions", "ids", "both", "glued"] = "descriptions"
    error_texts: Literal["newer", "older"] = "newer"
    render: Literal["server", "script"] = "server"
    cookie_banner: Literal["inline", "late_modal"] = "inline"

    def rules(self) -> Switches:
        return Switches(
            super_admin_bypasses_tier=self.super_admin_bypasses_tier,
            denial_page=self.denial_page,
            consent_button=self.consent_button,
            totp_required=self.totp_required,
            oauth_implied=self.oauth == "implied",
            approvals_per_app=self.approvals == "per_app",
        )

    def rendering(self) -> Rendering:
        return Rendering(self.markup, self.picker, self.consent_list, self.error_texts, self.render, self.cookie_banner)


@dataclass(frozen=True)
class Rendering:
    """How the simulator draws its screens: the same texts in other shapes (the rules never see these)."""

    markup: str = "classic"  # classic | plain | nested: tags, nesting, lists, selector generations
    picker: str = "links"  # links | rows (select a row, then confirm) | dropdown (a select, then confirm)
    consent_list: str = "descriptions"  # descriptions | ids | both | glued (an id in its own element, no space)
    error_texts: str = "newer"  # newer | older wordings of the error screens (brief 2d)
    render: str = "server"  # server | script: a "Loading…" shell that script fills in later
    cookie_banner: str = "inline"  # inline | late_modal: the banner arrives late, as a modal over the page


class ScenarioSpec(Strict):
    seed: int = 0
    switches: SwitchesSpec = SwitchesSpec()
    apps: list[AppSpec]
    accounts: list[AccountSpec]
    users: list[UserSpec]

    @model_validator(mode="after")
    def _refs(self) -> ScenarioSpec:
        unique_ids("accounts", [a.id for a in self.accounts])
        unique_ids("account hub_ids", [str(a.hub_id) for a in self.accounts])
        unique_ids("users", [u.id for u in self.users])
        unique_ids("apps", [a.client_id for a in self.apps])
        ids = {a.id for a in self.accounts}
        clients = {a.client_id for a in self.apps}
        for account in self.accounts:
            for client in account.installed:
                if client not in clients:
                    raise fail(
                        f"account '{account.id}' has unknown app '{client}' installed", "use an app's client_id."
                    )
        for user in self.users:
            for m in user.memberships:
                if m.account not in ids:
                    raise fail(
                        f"user '{user.id}' is a member of unknown account '{m.account}'",
                        f"use one of: {', '.join(sorted(ids))}.",
                    )
        return self


class Scenario:
    """A loaded scenario in the rules' terms, with Faker-filled names and emails."""

    def __init__(self, spec: ScenarioSpec, source: Path | None = None) -> None:
        fake = Faker()
        fake.seed_instance(spec.seed)
        self.source = source
        self.switches = spec.switches.rules()
        self.rendering = spec.switches.rendering()
        self.apps: dict[str, AppConfig] = {
            a.client_id: AppConfig(
                client_id=a.client_id,
                client_secret=a.client_secret,
                name=a.name,
                redirect_urls=tuple(a.redirect_urls),
                required=tuple(a.scopes.required),
                conditional=tuple(a.scopes.conditional),
                optional=tuple(a.scopes.optional),
                aup_signed=a.aup_signed,
                app_id=a.app_id,
            )
            for a in spec.apps
        }
        self.account_ids: dict[str, int] = {a.id: a.hub_id for a in spec.accounts}
        self.accounts: dict[int, Account] = {
            a.hub_id: Account(
                hub_id=a.hub_id,
                name=a.name or fake.company(),
                tiers=dict(a.tiers),
                add_ons=frozenset(a.add_ons),
                sensitive_data=a.sensitive_data,
                app_governance=a.app_governance,
                test_account=a.test_account,
                installed={client: frozenset(scopes) for client, scopes in a.installed.items()},
            )
            for a in spec.accounts
        }
        self.users: dict[str, User] = {}
        for u in spec.users:
            name = u.name or fake.name()
            email = u.email or f"{u.id}.{fake.unique.user_name()}@{fake.domain_name()}"
            memberships = tuple(
                Membership(
                    hub_id=self.account_ids[m.account],
                    super_admin=m.super_admin,
                    admin=m.admin or m.super_admin,
                    marketplace_access=m.marketplace_access,
                    permissions=frozenset(catalog.ALL_PERMISSIONS if m.permissions == "all" else m.permissions),
                )
                for m in u.memberships
            )
            self.users[u.id] = User(
                id=u.id,
                email=email.lower(),
                password=u.password,
                name=name,
                totp_secret=u.totp_secret,
                deactivated=u.deactivated,
                memberships=memberships,
            )

    def user_by_email(self, email: str) -> User | None:
        email = email.strip().lower()
        return next((u for u in self.users.values() if u.email == email), None)


def load_scenario(path: Path | None = None) -> Scenario:
    path = path or DEFAULT_SCENARIO
    data, lines = load_yaml(path)
    return Scenario(validate(ScenarioSpec, data, path, lines), source=path)
