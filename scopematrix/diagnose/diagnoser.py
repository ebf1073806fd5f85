"""The diagnosis of one blocked cell: which scopes block, who is at fault, and which fix works."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from scopematrix.diagnose.confirm import confirm
from scopematrix.diagnose.probes import PRIORITY, Inconclusive, ProbeCache, ProbePlan, Replays, Walks, YourApp
from scopematrix.diagnose.remedies import Remedies
from scopematrix.diagnose.search import binary_splitting, ddmin, one_at_a_time
from scopematrix.flow import Harness
from scopematrix.matrix import Cell
from scopematrix.model import CellResult, Diagnosis, Outcome, Remedy, ScopeFinding
from scopematrix.rules.catalog import CATALOG, MARKETPLACE, products_needed
from scopematrix.slots import PROBE, PROBE_CHAIN, Slots
from scopematrix.timeline import Timeline

# Up to this many candidate scopes, each is probed alone and all at once: n probes are within the group-testing
# bound d*ceil(log2(n/d)) + 2d for every d >= 1 when n <= 5, and they take one round trip instead of several.
SINGLES_UP_TO = 5


class Diagnoser:
    def __init__(
        self,
        harness: Harness,
        probes: ProbeCache | None = None,
        verify_installs: bool = True,
        slots: Slots | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self.harness = harness
        walks = Walks(harness, slots, timeline)
        self.probes = probes or ProbeCache(harness, walks)
        self.replays = Replays(harness, walks)
        self.your_app = YourApp(self.probes, self.replays)
        self.remedies = Remedies(harness, self.probes, self.replays, self.your_app, verify_installs)

    async def diagnose(self, cell: Cell, result: CellResult) -> Diagnosis:
        """Search with the probe app where one is configured (any subset is a valid URL there), then confirm
        its answer with your app: a set only the probe app showed, and your app contradicts, is never named;
        the search is then made with your app's own valid URLs."""
        # A cell with a precondition heads the longest chain of walks (replays, then probes): its walks first.
        token = PRIORITY.set(PROBE_CHAIN if cell.scope_set.installed_by else PROBE)
        try:
            return await self._diagnose(cell, result)
        finally:
            PRIORITY.reset(token)

    async def _diagnose(self, cell: Cell, result: CellResult) -> Diagnosis:
        matrix = self.harness.matrix
        app = matrix.app_of(cell.scope_set)
        own = ProbePlan.for_cell(cell, app.scopes, app.id, None)
        tally = [0]
        if matrix.spec.probe_app is None:
            return (await self._search(cell, result, own, tally))[0]
        plan = ProbePlan.for_cell(cell, app.scopes, app.id, matrix.spec.probe_app)
        # Your app's replay of the precondition, made while the probe app searches: the check with your app
        # and the optional-scope remedy both need it (made once, awaited where it is needed).
        prefetch = (
            asyncio.ensure_future(self.replays.real_app(cell))
            if app.scopes is not None and cell.scope_set.installed_by
            else None
        )
        try:
            diagnosis, account_only = await self._search(cell, result, plan, tally)
        finally:
            if prefetch is not None:
                await asyncio.gather(prefetch, return_exceptions=True)  # (a failed one is made again if needed)
        if app.scopes is None:
            return diagnosis  # your app's settings are unknown: no valid URL of it to confirm with
        said = await confirm(self.your_app, cell, (diagnosis, account_only), own.fixed, tally)
        if said is None:
            return diagnosis
        fallback, _ = await self._search(cell, result, own, tally)
        return dataclasses.replace(fallback, summary=f"{fallback.summary} ({said})", probes=tally[0])

    async def _search(
        self, cell: Cell, result: CellResult, plan: ProbePlan, tally: list[int]
    ) -> tuple[Diagnosis, bool]:
        """The diagnosis, and whether its scopes are the ones that bring the account screen back to a user who
        can't install at all (then, without them, HubSpot still refuses the user)."""
        # Probes never install: the diagnoses of one account and scope set share the namespace (the precondition
        # made with the probing app) and each other's answers.
        ns = await self.replays.ensure(cell, plan)

        async def probe(extra: Sequence[str]) -> Outcome:
            scopes = [*plan.fixed, *extra]
            out = await self._ask(cell, plan, scopes, ns, tally)
            if not (out.blocked or out.installs):
                raise Inconclusive.probe(scopes, out)
            return out

        # Two blockers: the account lacks a scope's product AND the user can't install at all. HubSpot
        # checks the account first, so the cell shows the account screen while the base probe shows the
        # user's: then look for the scopes that bring the account screen back.
        account_only, refused = False, ""

        async def blocked(extra: Sequence[str]) -> bool:
            out = await probe(extra)
            return out is Outcome.DENIED_ACCOUNT if account_only else out.blocked

        async def passes_without(removed: Sequence[str]) -> bool:
            out = await probe([s for s in plan.droppable if s not in removed])
            return out is not Outcome.DENIED_ACCOUNT if account_only else out.installs

        async def proven(named: Sequence[str], alone: bool) -> bool:
            """The named scopes block (`alone`: each on its own, as one at a time probed them; else the set as
            a whole), and the request without them installs."""
            blocks = [blocked([s]) for s in named] if alone else [blocked(named)]
            return all(await asyncio.gather(*blocks, passes_without(named)))

        async def installs_alone() -> bool:
            """Some candidate alone installs (a probe without a decision leaves it to the search to say so)."""
            try:
                return any(o.installs for o in await asyncio.gather(*(probe([s]) for s in plan.droppable)))
            except Inconclusive:
                return False

        try:
            start = tally[0]
            # The account's screen points at a scope, not at the installer: each candidate alone first (the
            # search's own first round). One of them installing proves the user can install this app, and
            # the base probe, there to tell whether the installer can't, is not needed.
            singles_first = 2 <= len(plan.droppable) <= SINGLES_UP_TO and result.outcome is Outcome.DENIED_ACCOUNT
            can_install = singles_first and await installs_alone()
            before = tally[0]
            base = None if can_install else await probe([])
            base_cost = tally[0] - before  # the base probe is not part of the search
            if base is not None and base.blocked:
                if result.outcome is not Outcome.DENIED_ACCOUNT or base is Outcome.DENIED_ACCOUNT:
                    return await self._base_blocked(cell, result, plan, tally), False
                account_only, refused = True, base.value
            if len(plan.droppable) <= SINGLES_UP_TO:
                # Few candidates: each alone, all at once (within the group-testing bound, one round trip).
                culprits, consistent = await one_at_a_time(plan.droppable, blocked)
                method = "one-at-a-time"
            else:
                culprits, consistent = await binary_splitting(plan.droppable, blocked)
                method = "binary-splitting"
            search = tally[0] - start - base_cost  # the proof below is not part of the search, unless it sends ddmin
            if consistent and culprits:
                consistent = await proven(culprits, method == "one-at-a-time")
            if not consistent:
                method = "ddmin"
                culprits = await ddmin(plan.droppable, passes_without)
                search = tally[0] - start - base_cost
            # Proof, not inference: what is named blocks, and the request without it installs.
            if not culprits or not await proven(culprits, method == "one-at-a-time"):
                raise Inconclusive("the probes contradict each other (no set both blocks and, left out, installs)")
            if account_only:
                findings = [ScopeFinding(s, "account", products_needed(s)) for s in culprits]
            else:
                findings = list(await asyncio.gather(*(self._attribute(cell, s, plan, ns, tally) for s in culprits)))
        except Inconclusive as exc:
            return self._inconclusive(cell, plan, tally[0], str(exc)), False
        diagnosis = await self._explained(cell, result, plan, culprits, findings, method, search, ns, tally)
        if not account_only:
            return diagnosis, False
        also = f"; {cell.user.id} also lacks an installer right: without them HubSpot still refuses ({refused})"
        grant = Remedy("grant_permissions", f"Give {cell.user.id} {MARKETPLACE} in this account.", None)
        return dataclasses.replace(
            diagnosis, summary=diagnosis.summary + also, remedies=(*diagnosis.remedies, grant)
        ), True

    async def _explained(
        self,
        cell: Cell,
        result: CellResult,
        plan: ProbePlan,
        culprits: list[str],
        findings: list[ScopeFinding],
        method: str,
        search: int,
        ns: str,
        tally: list[int],
    ) -> Diagnosis:
        user = cell.user.id
        levels = {f.level for f in findings}
        attribution = levels.pop() if len(levels) == 1 else "mixed"
        missing = list(result.missing_permissions)
        if not missing:
            missing = sorted({p for f in findings if f.level == "user" for p in CATALOG[f.scope].permissions})
        account_scopes = [f.scope for f in findings if f.level == "account"]
        optional, *past_tier = await asyncio.gather(
            self.remedies.optional(cell, culprits, tally),
            *([self.remedies.past_tier(cell, account_scopes, plan, ns, tally)] if account_scopes else []),
        )
        remedies = [optional]
        for f in findings:
            if f.level == "account":
                remedies.append(Remedy("upgrade_account", f"{cell.account.id} needs {f.hint} for {f.scope}.", None))
        remedies += past_tier
        if any(f.level == "user" for f in findings) and missing:
            remedies.append(Remedy("grant_permissions", f"Give {user}: {', '.join(missing)}.", None))
        summary = f"Blocked by {', '.join(culprits)} ({attribution}-level)"
        return Diagnosis(
            tuple(culprits), attribution, tuple(findings), tuple(missing), tuple(remedies), tally[0], method,
            summary, search, probe_app=plan.app if plan.probe_app else "",
        )  # fmt: skip

    async def _base_blocked(self, cell: Cell, result: CellResult, plan: ProbePlan, tally: list[int]) -> Diagnosis:
        """Even the smallest valid request is blocked."""
        if not plan.base_is_installer:
            # The app requires these scopes, so no valid URL of this app leaves them out.
            names = ", ".join(plan.fixed)
            rest = list(plan.droppable)
            summary = (
                f"Blocked within {{{names}}} (or by the installer's rights): the app's settings require "
                f"{'it' if len(plan.fixed) == 1 else 'them'}, so no valid install URL leaves "
                f"{'it' if len(plan.fixed) == 1 else 'them'} out; configure probe_app to split them"
                + (f" ({', '.join(rest)} could not be tested)" if rest else "")
            )
            return Diagnosis(
                (), "unknown", (), tuple(result.missing_permissions), (), tally[0], "app-settings", summary, 0,
                candidates=plan.fixed,
            )  # fmt: skip
        # Not even the base scope installs: the installer is the problem, not any one scope.
        user = cell.user.id
        missing = list(result.missing_permissions)
        remedies: list[Remedy] = []
        sa = self.remedies.super_admin(cell)
        if sa and sa != user:
            remedies.append(await self.remedies.first_install(cell, sa, tally))
        if MARKETPLACE in missing or not missing:
            remedies.append(Remedy("grant_permissions", f"Give {user} {MARKETPLACE} in this account.", None))
        summary = f"{user} cannot install this app in {cell.account.id} with any scope: " + (
            "HubSpot asks for approval first."
            if result.outcome is Outcome.NEEDS_APPROVAL
            else "an installer right is missing (Marketplace Access or the first install)."
        )
        return Diagnosis(
            (), "installer", (), tuple(missing), tuple(remedies), tally[0], "base-probe", summary, 1,
            probe_app=plan.app if plan.probe_app else "",
        )  # fmt: skip

    def _inconclusive(self, cell: Cell, plan: ProbePlan, probes: int, why: str) -> Diagnosis:
        candidates = (*plan.fixed, *plan.droppable)
        summary = f"Inconclusive: {why}, so no scope can be named; the blocker is among {{{', '.join(candidates)}}}" + (
            "" if plan.probe_app else " (declare the app's scope settings, or configure probe_app)"
        )
        return Diagnosis((), "unknown", (), (), (), probes, "inconclusive", summary, 0, candidates=candidates)

    async def _ask(self, cell: Cell, plan: ProbePlan, scopes: Sequence[str], ns: str, tally: list[int]) -> Outcome:
        """One probe of `scopes` for the cell's user and account, with `plan`'s app in namespace `ns`. With the
        probe app, a request that is also an install URL your app's declared settings accept (with the cell's
        optional scopes) is sent with your app, where the cell's precondition was made with it: your app's
        answer is the one the diagnosis is about (approvals are per app, open question 13), and the check with
        your app then asks nothing twice."""
        if plan.probe_app:
            out = await self.your_app.outcome(cell, scopes, cell.scope_set.optional, tally)
            if out is not None:
                return out
        return await self.probes.outcome(cell.user.id, cell.account.hub_id, scopes, plan.optional, ns, tally,
                                         plan.app)  # fmt: skip

    async def _attribute(self, cell: Cell, scope: str, plan: ProbePlan, ns: str, tally: list[int]) -> ScopeFinding:
        """Whose fault a culprit is, in HubSpot's own words: the screen the user gets for it alone. The
        account screen makes it the account's; the permissions or the approval screen, the user's."""
        own = await self._ask(cell, plan, [*plan.fixed, scope], ns, tally)
        if own is Outcome.DENIED_ACCOUNT:
            return ScopeFinding(scope, "account", products_needed(scope))
        if own in (Outcome.DENIED_PERMISSIONS, Outcome.NEEDS_APPROVAL):
            return ScopeFinding(scope, "user", ", ".join(CATALOG[scope].permissions) or "a super admin's rights")
        return ScopeFinding(scope, "unknown")
