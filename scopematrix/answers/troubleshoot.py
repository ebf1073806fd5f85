"""The customer-facing troubleshooting page of a run, as HTML and as Markdown for a docs site.

Organised by what a customer knows about themselves: their account's products and their kind of user, per
install option of the app, and HubSpot's own texts with what each means for this app. Built from the same
answers `scopematrix explain` gives, so the two never disagree. It carries no screenshots, Hub IDs, emails,
test-user or cell ids, secrets or target URLs: only the role and product words of the matrix and HubSpot's
texts with addresses and numbers taken out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel

from scopematrix.answers.explain import Fix, explain, measured
from scopematrix.answers.profile import ROLES, TIERS, normal
from scopematrix.model import CellResult
from scopematrix.report.build import RunMeta


class RoleRow(BaseModel):
    role: str
    verdict: str
    reasons: list[str]
    fixes: list[Fix]


class AccountBlock(BaseModel):
    products: str
    rows: list[RoleRow]


class OptionSection(BaseModel):
    app: str
    option: str
    scopes: list[str]
    optional: list[str]
    accounts: list[AccountBlock]


class HubSpotText(BaseModel):
    text: str
    meanings: list[str]
    seen_for: list[str]


class Page(BaseModel):
    apps: str
    measured_on: str
    measured_at: str
    sections: list[OptionSection]
    texts: list[HubSpotText]


def build_page(results: Sequence[CellResult], meta: RunMeta) -> Page:
    cells = measured(results)
    descriptions = sorted(
        {(r.customer_role, tuple(normal(r.account_products or {}).items())) for r in cells},
        key=lambda d: ([TIERS.index(t) for _, t in d[1]], list(ROLES).index(d[0])),
    )
    answers = [explain(results, role, dict(products)) for role, products in descriptions]
    sections: dict[tuple[str, str], OptionSection] = {}
    for answer in answers:
        for o in answer.options:
            section = sections.setdefault(
                (o.app, o.option),
                OptionSection(
                    app=o.app, option=o.option, scopes=o.scopes, optional=o.optional, accounts=[]
                ),  # fmt: skip
            )
            block = next((b for b in section.accounts if b.products == answer.products), None)
            if block is None:
                block = AccountBlock(products=answer.products, rows=[])
                section.accounts.append(block)
            several = len({v.installs for v in o.variants}) > 1 or len({v.reason for v in o.variants}) > 1
            reasons = [f"{v.reason}" + (f" (tested as: {v.tested_as})" if several else "") for v in o.variants]
            fixes = _fixes([f for v in o.variants for f in v.fixes])
            block.rows.append(RoleRow(role=answer.role, verdict=_verdict(o.verdict),
                                      reasons=list(dict.fromkeys(reasons)), fixes=fixes))  # fmt: skip
    return Page(
        apps=", ".join(sorted({r.app_name for r in cells if r.app_name})) or meta.app,
        measured_on="HubSpot" if meta.target == "live" else "scopematrix's HubSpot simulator (not real HubSpot)",
        measured_at=meta.started_at[:10], sections=list(sections.values()), texts=_texts(cells),
    )  # fmt: skip


def _verdict(verdict: str) -> str:
    return {"installs": "Installs", "blocked": "Blocked"}.get(verdict, "Depends on your user's permissions")


def _fixes(fixes: list[Fix]) -> list[Fix]:
    unique = {f.text: f for f in fixes}
    return sorted(unique.values(), key=lambda f: not f.verified)


def _texts(cells: Sequence[CellResult]) -> list[HubSpotText]:
    """Each text HubSpot showed on a refusal, with what it meant in the cells that showed it: one text can
    mean several things, which is why the cases above are the place to find the fix."""
    from scopematrix.answers.explain import hubspot_text, reason_of

    by_text: dict[str, list[CellResult]] = {}
    for r in cells:
        if not r.outcome.installs and hubspot_text(r):
            by_text.setdefault(hubspot_text(r), []).append(r)
    out = []
    for text, group in sorted(by_text.items()):
        roles = [ROLES[k] for k in ROLES if any(r.customer_role == k for r in group)]
        accounts = sorted({_products(r) for r in group})
        out.append(HubSpotText(
            text=text, meanings=list(dict.fromkeys(reason_of(r) for r in group)),
            seen_for=[f"users: {', '.join(roles)}", f"accounts with: {'; '.join(accounts)}"],
        ))  # fmt: skip
    return out


def _products(r: CellResult) -> str:
    from scopematrix.answers.profile import describe

    return describe(r.account_products or {})


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("scopematrix.answers"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_troubleshooting(out: Path, results: Sequence[CellResult], meta: RunMeta) -> tuple[Path, Path]:
    page = build_page(results, meta)
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    html, md = out / "troubleshooting.html", out / "troubleshooting.md"
    html.write_text(env.get_template("troubleshooting.html.j2").render(page=page), encoding="utf-8")
    md.write_text(env.get_template("troubleshooting.md.j2").render(page=page), encoding="utf-8")
    return html, md
