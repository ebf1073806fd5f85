"""Remedies, verified by experiment where that is harmless: optional scopes, a super admin's first install,
a super admin past the tier."""

from __future__ import annotations

from scopematrix.diagnose.probes import ProbeCache, ProbePlan, Replays, YourApp
from scopematrix.flow import Harness, WalkPlan
from scopematrix.matrix import Cell
from scopematrix.model import Remedy


class Remedies:
    def __init__(
        self, harness: Harness, probes: ProbeCache, replays: Replays, your_app: YourApp, verify_installs: bool
    ) -> None:
        self.harness = harness
        self.probes = probes
        self.replays = replays
        self.your_app = your_app
        # Remedies that install (a super admin's first install) run only where that is harmless.
        self.verify_installs = verify_installs

    def super_admin(self, cell: Cell) -> str | None:
        for user in self.harness.matrix.spec.users:
            if user.super_admin and cell.account.id in user.accounts:
                return user.id
        return None

    async def past_tier(
        self, cell: Cell, account_scopes: list[str], plan: ProbePlan, ns: str, tally: list[int]
    ) -> Remedy:
        """Can a super admin of the account install past the missing products (brief, open question 1)? A
        remedy finding: it never changes whose fault the screen says it is."""
        sa = self.super_admin(cell)
        names = ", ".join(account_scopes)
        if sa is None or sa == cell.user.id:
            why = "no super admin of the account is in the matrix" if sa is None else f"{sa} is the one refused"
            return Remedy("super_admin_past_tier", f"Whether a super admin can install {names} anyway: not probed "
                          f"({why}).", None)  # fmt: skip
        out = await self.probes.outcome(sa, cell.account.hub_id, [*plan.fixed, *account_scopes], plan.optional,
                                        ns, tally, plan.app)  # fmt: skip
        if out.installs:
            return Remedy("super_admin_past_tier", f"{sa} (super admin) can install {names} despite the account's "
                          "products.", True, out)  # fmt: skip
        return Remedy("super_admin_past_tier", f"{sa} (super admin) is refused too ({out.value}).", False, out)

    async def optional(self, cell: Cell, culprits: list[str], tally: list[int]) -> Remedy:
        """Move the culprits to optional_scope: probed only where the app's settings allow that URL."""
        keep = [s for s in cell.scope_set.scopes if s not in culprits]
        optional = [*cell.scope_set.optional, *culprits]
        moved = ", ".join(culprits)
        out = await self.your_app.outcome(cell, keep, optional, tally)  # (what the cell saw, without them)
        if out is None:
            return Remedy(
                "optional_scope",
                f"List {moved} as optional in the app's scope settings, then send "
                f"{'it' if len(culprits) == 1 else 'them'} as optional_scope (not probed: until then HubSpot "
                "refuses that install URL).",
                None,
                missing_scopes=tuple(culprits),
            )
        if out.installs:
            return Remedy(
                "optional_scope", f"Move {moved} to optional_scope: installs without them.", True, out, tuple(culprits)
            )
        return Remedy(
            "optional_scope",
            f"Moving {moved} to optional_scope still ends in {out.value}.",
            False,
            out,
            tuple(culprits),
        )

    async def first_install(self, cell: Cell, super_admin: str, tally: list[int]) -> Remedy:
        if not self.verify_installs:
            return Remedy(
                "super_admin_first", f"Have {super_admin} install first (not probed: it would install).", None
            )
        # The super admin's install is the same for every user refused this scope set in this account (and the
        # very precondition of a scope set installed_by the super admin): made once, in a namespace of its own,
        # where each user's probe (which never installs) looks at consent.
        hub, scopes, optional = cell.account.hub_id, tuple(cell.scope_set.scopes), tuple(cell.scope_set.optional)
        app = cell.scope_set.app or ""
        made = [0]  # 1 where this diagnosis made the install, 0 where it waited for another's (or a cell's)
        ns, first = await self.replays.made(WalkPlan.for_cell(cell, super_admin, approve=True, exchange=False), made)
        self.probes.count += made[0]
        tally[0] += made[0]
        if not first.outcome.installs:
            return Remedy(
                "super_admin_first",
                f"{super_admin} cannot install it either ({first.outcome.value}).",
                False,
                first.outcome,
            )
        out = await self.probes.outcome(cell.user.id, hub, scopes, optional, ns, tally, app)
        verdict = "then passes" if out.installs else f"still ends in {out.value}"
        return Remedy(
            "super_admin_first", f"After {super_admin} installs first, {cell.user.id} {verdict}.", out.installs, out
        )
