"""The install decision in the brief's suggested check order (section 3, "Suggested simulator check order").

`check_request` covers what HubSpot checks before an account is chosen; `check_install` covers the rest.
Both are pure: same inputs, same Decision.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from scopematrix.rules.catalog import CATALOG, MARKETPLACE, SUPER_ADMIN, ScopeSpec
from scopematrix.rules.model import Account, AppConfig, AuthorizeRequest, Membership, Switches


class Verdict(StrEnum):
    CONSENT = "consent"
    BAD_CLIENT_ID = "bad_client_id"
    REDIRECT_MISMATCH = "redirect_mismatch"
    INVALID_SCOPE = "invalid_scope"
    INSUFFICIENT_SCOPES = "insufficient_scopes"
    SCOPE_MISMATCH = "scope_mismatch"
    ACCOUNT_LACKS_FEATURES = "account_lacks_features"
    AUP_NOT_SIGNED = "aup_not_signed"
    NEEDS_APPROVAL = "needs_approval"
    USER_LACKS_PERMISSIONS = "user_lacks_permissions"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # What consent offers (CONSENT only): required scopes plus the optional scopes that survived.
    granted: tuple[str, ...] = ()
    dropped_optional: tuple[str, ...] = ()
    missing_permissions: tuple[str, ...] = ()
    # Ground truth for tests: the scopes that caused a denial. HubSpot never shows these.
    blocking_scopes: tuple[str, ...] = ()


def _uniq(scopes: Collection[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(scopes))


def check_request(
    apps: Mapping[str, AppConfig], request: AuthorizeRequest, switches: Switches | None = None
) -> Decision | None:
    """App-configuration checks; None means the request may go on to the account."""
    app = apps.get(request.client_id)
    if app is None:
        return Decision(Verdict.BAD_CLIENT_ID)
    if request.redirect_uri not in app.redirect_urls:
        return Decision(Verdict.REDIRECT_MISMATCH)
    invalid = [s for s in (*request.scopes, *request.optional_scopes) if s not in CATALOG]
    if invalid:
        return Decision(Verdict.INVALID_SCOPE, blocking_scopes=_uniq(invalid))
    implied = {"oauth"} if (switches or Switches()).oauth_implied else set()
    scope = set(request.scopes) | implied  # HubSpot adds oauth itself [R19], under one reading
    missing_required = [s for s in app.required if s not in scope]
    if missing_required:
        return Decision(Verdict.INSUFFICIENT_SCOPES, blocking_scopes=_uniq(missing_required))
    allowed_in_scope = set(app.required) | set(app.conditional)
    mismatched = [s for s in request.scopes if s not in allowed_in_scope]
    mismatched += [s for s in request.optional_scopes if s not in app.optional]
    if mismatched:
        return Decision(Verdict.SCOPE_MISMATCH, blocking_scopes=_uniq(mismatched))
    return None


def approved_scopes(
    account: Account, client_id: str, earlier: Mapping[str, Collection[str]], switches: Switches
) -> frozenset[str]:
    """The scopes already approved for this app in the account: installs made before the run and `earlier`
    ones (client_id -> scopes); where approvals are per account, those of every app."""
    merged: dict[str, set[str]] = {}
    for source in (account.installed, earlier):
        for app, scopes in source.items():
            merged.setdefault(app, set()).update(scopes)
    if switches.approvals_per_app:
        return frozenset(merged.get(client_id, ()))
    return frozenset(s for scopes in merged.values() for s in scopes)


def account_has(spec: ScopeSpec, account: Account) -> bool:
    if spec.sensitive and not account.sensitive_data:
        return False
    return not spec.products or any(need.met_by(account) for need in spec.products)


def missing_user_permissions(spec: ScopeSpec, member: Membership) -> tuple[str, ...]:
    if member.super_admin:
        return ()
    if spec.super_admin_only or spec.sensitive:
        return (SUPER_ADMIN,)
    return tuple(p for p in spec.permissions if p not in member.permissions)


def check_install(
    app: AppConfig,
    request: AuthorizeRequest,
    account: Account,
    member: Membership,
    approved: Collection[str],
    switches: Switches,
) -> Decision:
    """Account, governance and user checks for a request that passed `check_request`."""
    required = _uniq((*(("oauth",) if switches.oauth_implied else ()), *request.scopes))
    optional = _uniq([s for s in request.optional_scopes if s not in required])
    bypass = switches.super_admin_bypasses_tier and member.super_admin

    lacking = [s for s in required if not account_has(CATALOG[s], account)]
    if lacking and not bypass:
        return Decision(Verdict.ACCOUNT_LACKS_FEATURES, blocking_scopes=tuple(lacking))
    kept_optional = [s for s in optional if bypass or account_has(CATALOG[s], account)]

    if not app.aup_signed and not account.test_account:
        return Decision(Verdict.AUP_NOT_SIGNED)

    new_scopes = [s for s in required if s not in approved]
    if account.app_governance and new_scopes and not (member.super_admin or member.admin):
        return Decision(Verdict.NEEDS_APPROVAL, blocking_scopes=tuple(new_scopes))

    missing: dict[str, None] = {}
    blocking: list[str] = []
    # Marketplace Access is needed only for scopes not yet approved in the account [R8].
    if new_scopes and not (member.super_admin or member.marketplace_access):
        missing[MARKETPLACE] = None
        blocking.extend(new_scopes)
    for scope in required:
        lacks = missing_user_permissions(CATALOG[scope], member)
        if lacks:
            missing.update(dict.fromkeys(lacks))
            if scope not in blocking:
                blocking.append(scope)
    if missing:
        return Decision(
            Verdict.USER_LACKS_PERMISSIONS,
            missing_permissions=tuple(missing),
            blocking_scopes=tuple(blocking),
        )

    granted_optional = [s for s in kept_optional if not missing_user_permissions(CATALOG[s], member)]
    dropped = tuple(s for s in optional if s not in granted_optional)
    return Decision(Verdict.CONSENT, granted=(*required, *granted_optional), dropped_optional=dropped)
