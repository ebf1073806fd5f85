"""HubSpot scopes with the product/tier and user permissions each needs.

Sources are the research brief's scope table (`shared/research/hubspot-oauth.md` section 3): tiers are
official [R19] or from [R24]; user permissions are community-observed or inferred (marked † there) from
[R14][R15][R30][R41]. The brief says the user-permission mapping is undocumented (open question 2).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from scopematrix.rules.model import Hub, ProductNeed, Tier

# User permissions as HubSpot's 2026 denial page names them [R30].
MARKETPLACE = "App Marketplace access"
SUPER_ADMIN = "Super Admin"
CONTACTS_VIEW = "Contacts › View (incl. Unassigned)"
CONTACTS_EDIT = "Contacts › Edit (incl. Unassigned)"
COMPANIES_VIEW = "Companies › View"
COMPANIES_EDIT = "Companies › Edit"
DEALS_VIEW = "Deals › View"
DEALS_EDIT = "Deals › Edit"
FORMS_PUBLISH = "Forms › Publish"
WEBSITE_EDIT = "Website pages › Edit"
DESIGN_VIEW = "Design tools › View"
EMAIL_WRITER = "Email Writer"
WORKFLOWS_EDIT = "Workflows › Edit/Delete"
FILE_MANAGER = "File manager"
TICKETS_EDIT = "tickets-writer"
KB_SETTINGS = "Knowledge base settings"
FEEDBACK_VIEW = "Feedback surveys › View"
CUSTOM_OBJECTS = "Custom object unassigned editor"
PROPERTY_SETTINGS = "Property settings › Edit"
USER_ADMIN = "Users & Teams › Edit"
ACCOUNT_ACCESS = "Account Access"
SOCIAL_PUBLISH = "Social › Publish"
URL_REDIRECTS = "URL Redirects › Publish"

ALL_PERMISSIONS: tuple[str, ...] = (
    MARKETPLACE,
    CONTACTS_VIEW,
    CONTACTS_EDIT,
    COMPANIES_VIEW,
    COMPANIES_EDIT,
    DEALS_VIEW,
    DEALS_EDIT,
    FORMS_PUBLISH,
    WEBSITE_EDIT,
    DESIGN_VIEW,
    EMAIL_WRITER,
    WORKFLOWS_EDIT,
    FILE_MANAGER,
    TICKETS_EDIT,
    KB_SETTINGS,
    FEEDBACK_VIEW,
    CUSTOM_OBJECTS,
    PROPERTY_SETTINGS,
    USER_ADMIN,
    ACCOUNT_ACCESS,
    SOCIAL_PUBLISH,
    URL_REDIRECTS,
)


@dataclass(frozen=True)
class ScopeSpec:
    name: str
    grants: str
    # Any one of these satisfies the account; empty means every account has the feature.
    products: tuple[ProductNeed, ...] = ()
    permissions: tuple[str, ...] = ()
    super_admin_only: bool = False
    # Sensitive scopes: Enterprise, Sensitive Data on, Super Admin installer [R38].
    sensitive: bool = False
    source: str = "[R19]"


def _need(hub: Hub | None, tier: Tier, add_on: str | None = None) -> ProductNeed:
    return ProductNeed(hub, tier, add_on)


_PRO = Tier.PROFESSIONAL
_ENT = Tier.ENTERPRISE
_STARTER = Tier.STARTER
_ANY_ENTERPRISE = (_need(None, _ENT),)

_SPECS: tuple[ScopeSpec, ...] = (
    ScopeSpec("oauth", "Basic OAuth access, added automatically"),
    ScopeSpec("crm.objects.contacts.read", "View contacts", permissions=(CONTACTS_VIEW,)),
    ScopeSpec("crm.objects.contacts.write", "Create, edit and delete contacts", permissions=(CONTACTS_EDIT,)),
    ScopeSpec("crm.objects.companies.read", "View companies", permissions=(COMPANIES_VIEW,)),
    ScopeSpec("crm.objects.companies.write", "Edit companies", permissions=(COMPANIES_EDIT,)),
    ScopeSpec("crm.objects.deals.read", "View deals", permissions=(DEALS_VIEW,)),
    ScopeSpec("crm.objects.deals.write", "Edit deals", permissions=(DEALS_EDIT,)),
    ScopeSpec(
        "crm.objects.contacts.sensitive.read",
        "View sensitive contact properties",
        products=_ANY_ENTERPRISE,
        sensitive=True,
        source="[R24][R38]",
    ),
    ScopeSpec(
        "crm.objects.contacts.highly_sensitive.read",
        "View highly sensitive contact properties",
        products=_ANY_ENTERPRISE,
        sensitive=True,
        source="[R24][R38]",
    ),
    ScopeSpec("crm.objects.custom.read", "View custom objects", _ANY_ENTERPRISE, (CUSTOM_OBJECTS,), source="[R24]"),
    ScopeSpec("crm.objects.custom.write", "Edit custom objects", _ANY_ENTERPRISE, (CUSTOM_OBJECTS,), source="[R24]"),
    ScopeSpec("crm.schemas.custom.read", "View custom object schemas", _ANY_ENTERPRISE, source="[R24]"),
    ScopeSpec("crm.objects.owners.read", "View owners", super_admin_only=True, source="[R19][R41]"),
    ScopeSpec("crm.objects.users.read", "View users", super_admin_only=True, source="[R19][R41]"),
    ScopeSpec("crm.objects.users.write", "Edit users", super_admin_only=True, source="[R19][R41]"),
    ScopeSpec("crm.objects.quotes.read", "View quotes"),
    ScopeSpec("crm.objects.line_items.read", "View line items"),
    ScopeSpec("crm.objects.marketing_events.read", "View marketing events"),
    ScopeSpec("crm.objects.leads.read", "View leads", (_need(Hub.SALES, _PRO),), source="[R24]"),
    ScopeSpec("crm.objects.goals.read", "View goals", (_need(Hub.SALES, _STARTER),), source="[R24]"),
    ScopeSpec(
        "crm.objects.feedback_submission.read",
        "View feedback survey submissions",
        (_need(Hub.SERVICE, _PRO),),
        (FEEDBACK_VIEW,),
        source="[R24][R30]",
    ),
    ScopeSpec("crm.schemas.contacts.read", "View contact property settings"),
    ScopeSpec("crm.schemas.contacts.write", "Edit contact property settings", permissions=(PROPERTY_SETTINGS,)),
    ScopeSpec("crm.lists.read", "View lists"),
    ScopeSpec("crm.lists.write", "Edit lists"),
    ScopeSpec("crm.import", "Import records"),
    ScopeSpec("crm.export", "Export records"),
    ScopeSpec("settings.users.read", "View users and teams", permissions=(USER_ADMIN,)),
    ScopeSpec("settings.users.write", "Manage users", permissions=(USER_ADMIN,)),
    ScopeSpec("settings.users.teams.read", "View teams", permissions=(USER_ADMIN,)),
    ScopeSpec("settings.billing.write", "Manage billing", permissions=(ACCOUNT_ACCESS,)),
    ScopeSpec("account-info.security.read", "View the account's audit log", permissions=(ACCOUNT_ACCESS,)),
    ScopeSpec("cms.domains.read", "View domains"),
    ScopeSpec("cms.functions.read", "View serverless functions", (_need(Hub.CONTENT, _ENT),), source="[R24]"),
    ScopeSpec(
        "cms.knowledge_base.articles.read",
        "View knowledge base articles",
        (_need(Hub.SERVICE, _PRO),),
        (KB_SETTINGS,),
        source="[R24][R30]",
    ),
    ScopeSpec("collector.graphql_query.execute", "Run GraphQL queries", (_need(Hub.CONTENT, _PRO),), source="[R24]"),
    ScopeSpec(
        "ctas.read",
        "View calls-to-action",
        (_need(Hub.MARKETING, _STARTER), _need(Hub.CONTENT, _STARTER)),
        source="[R24]",
    ),
    ScopeSpec(
        "content",
        "Sites, landing pages, email, blog and campaigns",
        (_need(Hub.CONTENT, _PRO), _need(Hub.MARKETING, _PRO)),
        (WEBSITE_EDIT, DESIGN_VIEW, EMAIL_WRITER),
        source="[R19][R14][R30]",
    ),
    ScopeSpec(
        "hubdb",
        "HubDB tables",
        (_need(Hub.CONTENT, _PRO), _need(Hub.MARKETING, _PRO, "website")),
        source="[R19][R40]",
    ),
    ScopeSpec("automation", "Workflows", (_need(Hub.MARKETING, _PRO),), (WORKFLOWS_EDIT,), source="[R19][R30]"),
    ScopeSpec(
        "automation.sequences.read",
        "View sequences",
        (_need(Hub.SALES, _PRO), _need(Hub.SERVICE, _PRO)),
        source="[R24]",
    ),
    ScopeSpec("social", "Social inbox", (_need(Hub.MARKETING, _PRO),), (SOCIAL_PUBLISH,), source="[R19][R40]"),
    ScopeSpec(
        "transactional-email",
        "Transactional email",
        (_need(Hub.MARKETING, _PRO, "transactional-email"),),
        source="[R19][R40]",
    ),
    ScopeSpec(
        "analytics.behavioral_events.send",
        "Send custom behavioral events",
        (_need(Hub.MARKETING, _ENT),),
        source="[R24]",
    ),
    ScopeSpec(
        "behavioral_events.event_definitions.read_write",
        "Manage custom event definitions",
        (_need(Hub.MARKETING, _ENT),),
        source="[R24]",
    ),
    ScopeSpec("communication_preferences.read", "View subscription preferences"),
    ScopeSpec("business-intelligence", "Analytics data"),
    ScopeSpec("conversations.read", "View conversations inbox"),
    ScopeSpec(
        "conversations.visitor_identification.tokens.create",
        "Identify chat visitors",
        (_need(None, _PRO),),
        source="[R24]",
    ),
    ScopeSpec("e-commerce", "Products and line items"),
    ScopeSpec("files", "File Manager", permissions=(FILE_MANAGER,), source="[R19][R12]"),
    ScopeSpec("files.ui_hidden.read", "View hidden files", permissions=(FILE_MANAGER,)),
    ScopeSpec("forms", "Forms", permissions=(FORMS_PUBLISH,), source="[R19][R30]"),
    ScopeSpec("forms-uploaded-files", "Files uploaded through forms", permissions=(FORMS_PUBLISH,)),
    ScopeSpec("external_integrations.forms.access", "Forms from external integrations"),
    ScopeSpec("tickets", "Tickets", permissions=(TICKETS_EDIT,), source="[R19][R30]"),
    ScopeSpec("timeline", "Timeline events"),
    ScopeSpec("sales-email-read", "Read one-to-one email"),
    ScopeSpec("integration-sync", "Data sync"),
    ScopeSpec("accounting", "Accounting extension"),
    ScopeSpec("actions", "Workflow actions"),
    ScopeSpec("media_bridge.read", "Media bridge"),
    ScopeSpec("contacts", "All contact data (legacy)", permissions=(CONTACTS_EDIT,), source="[R19][R15]"),
    ScopeSpec("reports", "Reports (legacy)", (_need(Hub.MARKETING, _STARTER),), source="[R40]"),
)

CATALOG: dict[str, ScopeSpec] = {spec.name: spec for spec in _SPECS}


def known(name: str) -> bool:
    return name in CATALOG


def unknown_scopes(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in CATALOG]


def suggest(name: str) -> str | None:
    """The closest real scope name, for "did you mean" messages."""
    close = difflib.get_close_matches(name, list(CATALOG), n=1, cutoff=0.6)
    return close[0] if close else None


def products_needed(scope: str) -> str:
    """A human label for the products a scope needs, e.g. "Content Professional or Marketing Professional"."""
    spec = CATALOG[scope]
    if spec.sensitive:
        return "Enterprise with Sensitive Data on"
    return " or ".join(n.label() for n in spec.products) or "any account"
