"""The HubSpot world the rules reason about: hubs, tiers, accounts, users, apps, requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Hub(StrEnum):
    MARKETING = "marketing"
    SALES = "sales"
    SERVICE = "service"
    CONTENT = "content"
    OPERATIONS = "operations"
    COMMERCE = "commerce"


class Tier(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)


@dataclass(frozen=True)
class ProductNeed:
    """One way for an account to have a scope's feature: `hub` at `tier` or better (None = any hub)."""

    hub: Hub | None
    tier: Tier
    add_on: str | None = None

    def met_by(self, account: Account) -> bool:
        if self.add_on is not None and self.add_on not in account.add_ons:
            return False
        hubs = [self.hub] if self.hub is not None else list(Hub)
        return any(account.tier(h).rank >= self.tier.rank for h in hubs)

    def label(self) -> str:
        hub = self.hub.value.capitalize() if self.hub else "Any hub"
        extra = f" + {self.add_on} add-on" if self.add_on else ""
        return f"{hub} {self.tier.value.capitalize()}{extra}"


@dataclass(frozen=True)
class Account:
    hub_id: int
    name: str
    tiers: Mapping[Hub, Tier] = field(default_factory=dict)
    add_ons: frozenset[str] = frozenset()
    sensitive_data: bool = False
    # App Governance (beta, Apr 2026 [R22]): non-admins must request approval for unapproved scopes.
    app_governance: bool = False
    test_account: bool = False
    # Apps installed before the run: client_id -> the scopes approved for it in this account.
    installed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def tier(self, hub: Hub) -> Tier:
        return self.tiers.get(hub, Tier.FREE)


@dataclass(frozen=True)
class Membership:
    """A user's rights in one account."""

    hub_id: int
    super_admin: bool = False
    admin: bool = False
    marketplace_access: bool = False
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password: str
    name: str = ""
    totp_secret: str | None = None
    deactivated: bool = False
    memberships: tuple[Membership, ...] = ()

    def membership(self, hub_id: int) -> Membership | None:
        return next((m for m in self.memberships if m.hub_id == hub_id), None)


@dataclass(frozen=True)
class AppConfig:
    client_id: str
    client_secret: str
    name: str
    redirect_urls: tuple[str, ...]
    required: tuple[str, ...] = ("oauth",)
    conditional: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    aup_signed: bool = True
    app_id: int = 1


@dataclass(frozen=True)
class Switches:
    """Scenario switches for behaviour the brief records as disputed or as UI generations."""

    # Community report [R13] says super admins bypass tier gating; staff say not [R9][R12]. Off by default.
    super_admin_bypasses_tier: bool = False
    # "legacy": 2017-19 "correct role" page [R15]; "2026": names the missing permissions [R30].
    denial_page: str = "2026"
    # "Connect app" (current [R37]) or "Grant access" (older [R4][R7]).
    consent_button: str = "Connect app"
    # Require TOTP 2FA for users that have a secret.
    totp_required: bool = True
    # `oauth` is "base, auto-added" [R19]; whether an install URL may leave it out when the app's settings
    # list it is unconfirmed (open question 11). True: HubSpot adds it; False: the URL must carry it.
    oauth_implied: bool = True
    # Marketplace Access is needed only for scopes "not yet approved in the account" [R8]: approved for
    # this app (True), or for any app of the account (False). Open question 13.
    approvals_per_app: bool = True


@dataclass(frozen=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...] = ()
