"""What a customer can say about themselves: their kind of HubSpot user and their account's products.

The matrix describes each test user and account in these words (`customer_role`, `products`), the run copies
them onto every cell, and `explain` and the troubleshooting page match a customer's description against them.
"""

from __future__ import annotations

from collections.abc import Mapping

ROLES: dict[str, str] = {
    "super_admin": "Super admin",
    "admin_marketplace": "Admin with App Marketplace Access",
    "admin": "Admin without App Marketplace Access",
    "restricted": "User with limited permissions",
    "deactivated": "Deactivated user",
}
HUBS: dict[str, str] = {
    "marketing": "Marketing Hub",
    "sales": "Sales Hub",
    "service": "Service Hub",
    "content": "Content Hub",
    "operations": "Operations Hub",
    "commerce": "Commerce Hub",
}
TIERS = ("free", "starter", "professional", "enterprise")

Products = dict[str, str]  # hub -> tier; a hub not named is free


def normal(products: Mapping[str, str]) -> Products:
    """Every hub with its tier (free where not named), so two descriptions of one account compare equal."""
    return {hub: products.get(hub, "free") for hub in HUBS}


def describe(products: Mapping[str, str]) -> str:
    """'Marketing Hub Professional, Sales Hub Starter' (paid hubs only); 'Free tools only' when none is."""
    paid = [f"{HUBS[h]} {t.capitalize()}" for h, t in normal(products).items() if t != "free"]
    if len(paid) == len(HUBS) and len(set(normal(products).values())) == 1:
        return f"Every hub at {paid[0].rsplit(' ', 1)[1]}"
    return ", ".join(paid) or "Free tools only"


def distance(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    """How far apart two accounts' products are: tier steps summed over the hubs."""
    na, nb = normal(a), normal(b)
    return sum(abs(TIERS.index(na[h]) - TIERS.index(nb[h])) for h in HUBS)


def parse_products(text: str) -> Products:
    """`marketing:professional,sales:starter` (or `free`) as given on the command line; ValueError if not."""
    out: Products = {}
    if text.strip().lower() in ("", "free"):
        return out
    for part in text.split(","):
        hub, sep, tier = part.strip().lower().partition(":")
        hub = hub.removesuffix(" hub").strip()
        if not sep or hub not in HUBS or tier.strip() not in TIERS:
            raise ValueError(part.strip())
        out[hub] = tier.strip()
    return out
