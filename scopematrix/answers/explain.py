"""`scopematrix explain`: one customer's question answered from a finished run's cells, and nothing else.

Support asks what a customer can tell (their kind of user, their account's products, optionally HubSpot's
text and the app or install option); the answer is what the matrix measured for that description: will it
install, which scopes block, whose side the block is on, and the fixes in words a customer acts on. Where no
measured cell fits the description it says "not tested" and names the nearest measured ones. It never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from pydantic import BaseModel

from scopematrix.answers.profile import ROLES, describe, distance, normal
from scopematrix.model import CellResult, Outcome

Fault = Literal["none", "account", "user", "app", "login", "unknown"]
DEPENDS: Final = "depends on the user's permissions"
Verdict = Literal["installs", "blocked", "depends on the user's permissions"]
FAULT_OF_OUTCOME: dict[Outcome, Fault] = {
    Outcome.GRANTED: "none",
    Outcome.GRANTED_PARTIAL: "none",
    Outcome.DENIED_ACCOUNT: "account",
    Outcome.DENIED_PERMISSIONS: "user",
    Outcome.NEEDS_APPROVAL: "user",
    Outcome.APP_MISCONFIGURED: "app",
    Outcome.LOGIN_FAILED: "login",
}
FAULT_OF_ATTRIBUTION: dict[str, Fault] = {"account": "account", "user": "user", "installer": "user"}


class Fix(BaseModel):
    who: Literal["you", "a super admin", "your account", "the app team"]
    text: str
    verified: bool  # measured by the matrix (a probe or another cell); False: the likely fix, not tried


class Variant(BaseModel):
    """What one tested user who fits the customer's description got."""

    tested_as: str  # the test user's role, as the matrix names it
    outcome: str
    installs: bool
    fault: Fault
    reason: str
    blocking_scopes: list[str]
    among: list[str]  # when the probes could not isolate the blocker: the scopes it is among
    missing_permissions: list[str]
    hubspot_says: str
    fixes: list[Fix]


class InstallOption(BaseModel):
    app: str
    option: str
    scopes: list[str]
    optional: list[str]
    verdict: Verdict
    variants: list[Variant]


class Nearest(BaseModel):
    role: str
    products: str
    app: str
    option: str
    outcome: str


class Answer(BaseModel):
    run: str
    target: str
    measured_at: str
    role: str
    products: str
    tested: bool
    summary: str
    options: list[InstallOption]
    nearest: list[Nearest]
    says: str = ""
    says_matches: bool | None = None  # None: no text given
    says_seen_for: list[Nearest] = []  # measured cells whose screen shows the customer's text


def option_of(r: CellResult) -> str:
    return r.scope_set_label or r.scope_set


def measured(results: Sequence[CellResult]) -> list[CellResult]:
    """Cells a customer can be matched to: described in the matrix, and decided by HubSpot (no outage)."""
    return [r for r in results if r.customer_role and r.account_products is not None and not r.outcome.infrastructure]


def explain(
    results: Sequence[CellResult],
    role: str,
    products: Mapping[str, str],
    app: str = "",
    option: str = "",
    says: str = "",
    run: tuple[str, str, str] = ("", "", ""),
) -> Answer:
    """`run`: (run id, target, when it was measured)."""
    pool = [r for r in measured(results) if _wanted(r, app, option)]
    mine = [r for r in pool if r.customer_role == role and normal(r.account_products or {}) == normal(products)]
    options = [_option(group, pool) for group in _by_option(mine)]
    answer = Answer(
        run=run[0], target=run[1], measured_at=run[2], role=ROLES[role], products=describe(products),
        tested=bool(options), summary=_summary(options), options=options,
        nearest=[] if options else _nearest(pool, role, products),
    )  # fmt: skip
    if says:
        seen = [r for r in measured(results) if _shows(r, says)]
        answer.says, answer.says_matches = says, any(_shows(r, says) for r in mine)
        answer.says_seen_for = _unique([_as_nearest(r) for r in seen])[:8]
    return answer


def _wanted(r: CellResult, app: str, option: str) -> bool:
    ok_app = not app or app.lower() == r.app_name.lower()
    ok_option = not option or option.lower() in (r.scope_set.lower(), option_of(r).lower())
    return ok_app and ok_option


def _by_option(cells: Sequence[CellResult]) -> list[list[CellResult]]:
    groups: dict[str, list[CellResult]] = {}
    for r in cells:
        groups.setdefault(r.scope_set, []).append(r)
    return list(groups.values())


def _option(group: list[CellResult], pool: Sequence[CellResult]) -> InstallOption:
    variants = [_variant(r, pool) for r in sorted(group, key=lambda r: r.role)]
    installs = {v.installs for v in variants}
    verdict: Verdict = "installs" if installs == {True} else "blocked" if installs == {False} else DEPENDS
    first = group[0]
    return InstallOption(
        app=first.app_name, option=option_of(first), scopes=list(first.requested_scopes),
        optional=list(first.optional_scopes), verdict=verdict, variants=variants,
    )  # fmt: skip


def fault_of(r: CellResult) -> Fault:
    if r.diagnosis is not None and r.diagnosis.attribution in FAULT_OF_ATTRIBUTION:
        return FAULT_OF_ATTRIBUTION[r.diagnosis.attribution]
    return FAULT_OF_OUTCOME.get(r.outcome, "unknown")


def reason_of(r: CellResult) -> str:
    """Why, in words a customer can check against their own account."""
    if r.outcome.installs:
        offered = r.granted_scopes if r.granted_scopes is not None else r.offered_scopes
        dropped = [s for s in r.optional_scopes if offered is not None and s not in offered]
        return "Installs" + (f", without the optional {', '.join(dropped)}" if dropped else "") + "."
    d = r.diagnosis
    scopes = ", ".join(d.blocking_scopes) if d and d.blocking_scopes else ""
    among = f"one of {', '.join(d.candidates)}" if d and d.candidates else ""
    what = scopes or among or "what the app asks for"
    fault = fault_of(r)
    if fault == "account":
        return f"The account's products don't include what {what} needs."
    if fault == "user":
        if d is not None and d.attribution == "installer":
            return "This user can't install the app in this account: an installer right is missing."
        perms = f" (HubSpot lists: {', '.join(r.missing_permissions)})" if r.missing_permissions else ""
        return f"The user lacks the rights to approve {what}{perms}."
    if fault == "app":
        return "The app's install link doesn't match the app's settings in HubSpot: only the app team can fix it."
    if fault == "login":
        return "HubSpot refused the sign-in (for example, a deactivated user)."
    return "HubSpot refused the install; the matrix could not tell why."


def fixes_of(r: CellResult, pool: Sequence[CellResult]) -> list[Fix]:
    """The remedies the diagnosis verified, then what other measured cells show works, then likely fixes."""
    if r.outcome.installs:
        return []
    fixes: list[Fix] = []
    app = r.app_name or "the app"
    for remedy in r.diagnosis.remedies if r.diagnosis else ():
        scopes = ", ".join(remedy.missing_scopes) or (", ".join(r.diagnosis.blocking_scopes) if r.diagnosis else "")
        if remedy.kind == "super_admin_first" and remedy.verified:
            fixes.append(Fix(who="a super admin", verified=True,
                             text=f"Ask a super admin of your HubSpot account to install {app} first; after that "
                             "you can install it too."))  # fmt: skip
        elif remedy.kind == "super_admin_past_tier" and remedy.verified:
            fixes.append(Fix(who="a super admin", verified=True, text="A super admin of your account can install it."))
        elif remedy.kind == "optional_scope" and scopes:
            fixes.append(Fix(who="the app team", verified=bool(remedy.verified),
                             text=f"The app can ask for {scopes} as optional in its next release: it then installs "
                             "without them."))  # fmt: skip
        elif remedy.kind == "grant_permissions" and r.missing_permissions:
            fixes.append(Fix(who="a super admin", verified=False,
                             text=f"A super admin can give you: {', '.join(r.missing_permissions)} "
                             "(Settings › Users & Teams)."))  # fmt: skip
    fixes += _measured_alternatives(r, pool)
    return fixes


def _measured_alternatives(r: CellResult, pool: Sequence[CellResult]) -> list[Fix]:
    """Other cells of the same install option that install: another account's products, another kind of user."""
    same = [o for o in pool if o.scope_set == r.scope_set and o.outcome.installs]
    out: list[Fix] = []
    fault = fault_of(r)
    if fault == "account":
        better = sorted({describe(o.account_products or {}) for o in same if o.customer_role == r.customer_role})
        out += [Fix(who="your account", verified=True, text=f"On an account with {b}, the same kind of user installs "
                    "it (measured).") for b in better[:2]]  # fmt: skip
    if fault == "user":
        mine = normal(r.account_products or {})
        roles = sorted({o.customer_role for o in same if normal(o.account_products or {}) == mine} - {r.customer_role})
        if roles:
            names = " or ".join(ROLES[k] for k in roles)
            out.append(Fix(who="you", verified=True, text=f"Ask someone on the same account who is a {names} to "
                           "install it: for them it installs (measured)."))  # fmt: skip
    return out


def _variant(r: CellResult, pool: Sequence[CellResult]) -> Variant:
    d = r.diagnosis
    return Variant(
        tested_as=r.role, outcome=r.outcome.value, installs=r.outcome.installs, fault=fault_of(r), reason=reason_of(r),
        blocking_scopes=list(d.blocking_scopes) if d else [], among=list(d.candidates) if d else [],
        missing_permissions=list(r.missing_permissions), hubspot_says=hubspot_text(r),
        fixes=fixes_of(r, pool),
    )  # fmt: skip


def _summary(options: Sequence[InstallOption]) -> str:
    if not options:
        return "Not tested: no measured cell fits this description. The nearest measured cells are listed."
    verdicts = {o.verdict for o in options}
    if verdicts == {"installs"}:
        return "Installs."
    if verdicts == {"blocked"}:
        return "Blocked."
    return "; ".join(f"{o.option}: {o.verdict}" for o in options) + "."


def _as_nearest(r: CellResult) -> Nearest:
    return Nearest(role=ROLES[r.customer_role], products=describe(r.account_products or {}), app=r.app_name,
                   option=option_of(r), outcome=r.outcome.label)  # fmt: skip


def _nearest(pool: Sequence[CellResult], role: str, products: Mapping[str, str]) -> list[Nearest]:
    """The measured cells closest to the description: the same kind of user first, then the closest products."""
    ranked = sorted(pool, key=lambda r: (r.customer_role != role, distance(r.account_products or {}, products)))
    closest = list(dict.fromkeys((r.customer_role, describe(r.account_products or {})) for r in ranked))[:2]
    return _unique([_as_nearest(r) for r in ranked if (r.customer_role, describe(r.account_products or {})) in closest])


def _unique(items: list[Nearest]) -> list[Nearest]:
    seen: set[str] = set()
    out = []
    for n in items:
        if n.model_dump_json() not in seen:
            seen.add(n.model_dump_json())
            out.append(n)
    return out


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[’']", "'", text).lower().split())


def _shows(r: CellResult, says: str) -> bool:
    want = _norm(says)
    return bool(want) and any(want in _norm(t) for t in (r.heading, r.message))


URL = re.compile(r"https?://\S+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
LONG_NUMBER = re.compile(r"\b\d{5,}\b")


def hubspot_text(r: CellResult) -> str:
    """What HubSpot showed: the screen's heading (a refused login's own words are in the message)."""
    return public_text(r.message if r.outcome is Outcome.LOGIN_FAILED and r.message else r.heading)


def public_text(text: str) -> str:
    """HubSpot's text as a customer sees it, without the test account's addresses, Hub IDs or URLs."""
    return LONG_NUMBER.sub("…", EMAIL.sub("…", URL.sub("…", text))).strip()


def render_text(answer: Answer) -> str:
    """The answer for a support agent's reply."""
    lines = [f"{answer.role} on an account with {answer.products}: {answer.summary}"]
    for o in answer.options:
        lines.append(f"\n{o.app} — {o.option}: {o.verdict}")
        for v in o.variants:
            lines.append(f"  tested as {v.tested_as}: {v.reason}")
            if v.hubspot_says and not v.installs:
                lines.append(f"    HubSpot shows: “{v.hubspot_says}”")
            for f in v.fixes:
                lines.append(f"    fix ({f.who}{'' if f.verified else ', not verified'}): {f.text}")
    if not answer.tested:
        lines.append("Nearest measured cells:")
        lines += [f"  {n.role} on {n.products}: {n.app} — {n.option}: {n.outcome}" for n in answer.nearest]
    if answer.says:
        where = "matches" if answer.says_matches else "does not match"
        lines.append(f"\nThe text “{answer.says}” {where} what this description gets.")
        if not answer.says_matches and answer.says_seen_for:
            lines.append("It was measured for:")
            lines += [f"  {n.role} on {n.products}: {n.app} — {n.option}" for n in answer.says_seen_for]
    lines.append(f"\n(measured on {answer.target}, {answer.measured_at}, run {answer.run})")
    return "\n".join(lines)
