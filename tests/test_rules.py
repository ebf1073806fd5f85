from __future__ import annotations

import pytest

from scopematrix.rules.catalog import CATALOG, MARKETPLACE, SUPER_ADMIN, suggest
from scopematrix.rules.decide import Verdict, check_install, check_request
from scopematrix.rules.model import Account, AppConfig, AuthorizeRequest, Hub, Membership, Switches, Tier

APP = AppConfig(
    "cid",
    "secret",
    "App",
    ("https://x.example/cb",),
    ("oauth",),
    ("content", "forms", "crm.objects.contacts.read", "crm.objects.owners.read"),
    ("social",),
)
FREE = Account(1, "Free")
MKT_PRO = Account(2, "Pro", {Hub.MARKETING: Tier.PROFESSIONAL})
ADMIN = Membership(
    2,
    admin=True,
    marketplace_access=True,
    permissions=frozenset(
        {
            "Forms › Publish",
            "Website pages › Edit",
            "Design tools › View",
            "Email Writer",
            "Contacts › View (incl. Unassigned)",
        }
    ),
)
SUPER = Membership(1, super_admin=True, admin=True)


def req(scope: str, optional: str = "", client: str = "cid", redirect: str = "https://x.example/cb"):
    return AuthorizeRequest(client, redirect, tuple(scope.split()), tuple(optional.split()))


def test_catalog_has_at_least_30_real_scopes_with_sources():
    assert len(CATALOG) >= 30
    assert all(spec.source.startswith("[R") for spec in CATALOG.values())


@pytest.mark.parametrize(
    ("request_", "verdict"),
    [
        (req("forms", client="nope"), Verdict.BAD_CLIENT_ID),
        (req("forms", redirect="https://evil.example/cb"), Verdict.REDIRECT_MISMATCH),
        (req("https://x.example/cb/../cb"), Verdict.INVALID_SCOPE),
        (req("crm.objects.contact.read"), Verdict.INVALID_SCOPE),
        (req("files"), Verdict.SCOPE_MISMATCH),
        (req("forms social"), Verdict.SCOPE_MISMATCH),
        (req("forms", "content"), Verdict.SCOPE_MISMATCH),
    ],
)
def test_app_configuration_checks_come_first(request_, verdict):
    decision = check_request({"cid": APP}, request_)
    assert decision is not None and decision.verdict is verdict


def test_required_scope_missing_is_insufficient():
    app = AppConfig("cid", "s", "A", ("https://x.example/cb",), ("oauth", "forms"), ("content",))
    decision = check_request({"cid": app}, req("content"))
    assert decision is not None and decision.verdict is Verdict.INSUFFICIENT_SCOPES
    assert decision.blocking_scopes == ("forms",)


def test_account_without_the_product_is_denied_even_for_a_super_admin_by_default():
    d = check_install(APP, req("forms content"), FREE, SUPER, set(), Switches())
    assert d.verdict is Verdict.ACCOUNT_LACKS_FEATURES and d.blocking_scopes == ("content",)


def test_disputed_super_admin_tier_bypass_is_a_switch():
    d = check_install(APP, req("content"), FREE, SUPER, set(), Switches(super_admin_bypasses_tier=True))
    assert d.verdict is Verdict.CONSENT


def test_marketplace_access_is_needed_only_for_scopes_not_yet_approved():
    no_mp = Membership(2, admin=True, permissions=ADMIN.permissions)
    d = check_install(APP, req("forms"), MKT_PRO, no_mp, set(), Switches())
    assert d.verdict is Verdict.USER_LACKS_PERMISSIONS and d.missing_permissions == (MARKETPLACE,)
    d = check_install(APP, req("forms"), MKT_PRO, no_mp, {"oauth", "forms"}, Switches())
    assert d.verdict is Verdict.CONSENT


def test_per_tool_permissions_still_apply_after_a_super_admin_install():
    sales = Membership(
        2, admin=True, marketplace_access=True, permissions=frozenset({"Contacts › View (incl. Unassigned)"})
    )
    d = check_install(APP, req("forms content"), MKT_PRO, sales, {"oauth", "forms", "content"}, Switches())
    assert d.verdict is Verdict.USER_LACKS_PERMISSIONS
    assert set(d.blocking_scopes) == {"forms", "content"}
    assert "Forms › Publish" in d.missing_permissions


def test_admin_only_scope_blocks_non_super_admins():
    d = check_install(APP, req("crm.objects.owners.read"), MKT_PRO, ADMIN, set(), Switches())
    assert d.verdict is Verdict.USER_LACKS_PERMISSIONS and d.missing_permissions == (SUPER_ADMIN,)


def test_optional_scopes_are_dropped_silently():
    d = check_install(APP, req("forms", "social"), FREE, Membership(1, super_admin=True), set(), Switches())
    assert d.verdict is Verdict.CONSENT and "social" not in d.granted and d.dropped_optional == ("social",)


def test_app_governance_asks_non_admins_for_approval():
    gov = Account(2, "Gov", {Hub.MARKETING: Tier.PROFESSIONAL}, app_governance=True)
    d = check_install(APP, req("forms"), gov, Membership(2, permissions=ADMIN.permissions), set(), Switches())
    assert d.verdict is Verdict.NEEDS_APPROVAL


def test_unsigned_acceptable_use_policy_blocks_non_test_accounts():
    app = AppConfig("cid", "s", "A", ("https://x.example/cb",), ("oauth",), ("forms",), aup_signed=False)
    assert check_install(app, req("forms"), MKT_PRO, ADMIN, set(), Switches()).verdict is Verdict.AUP_NOT_SIGNED
    test_acc = Account(2, "T", test_account=True)
    assert check_install(app, req("forms"), test_acc, ADMIN, set(), Switches()).verdict is Verdict.CONSENT


def test_did_you_mean_suggests_the_closest_scope():
    assert suggest("crm.objects.contact.read") == "crm.objects.contacts.read"
