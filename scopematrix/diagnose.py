"""Explain a blocked cell by experiment: which scopes block, who is at fault, and which fix works.

Probes are authorize flows with subsets of the requested scopes that stop at the decision; they never
install. Group testing (binary splitting, one culprit at a time) assumes a scope blocks on its own; when
the probes contradict that, delta debugging (ddmin) takes over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from scopematrix.flow import Harness, WalkPlan
from scopematrix.matrix import Cell
from scopematrix.model import CellResult, Diagnosis, Outcome, Remedy, ScopeFinding
from scopematrix.rules.catalog import CATALOG, MARKETPLACE
from scopematrix.rules.decide import products_needed

Test = Callable[[Sequence[str]], Awaitable[bool]]


class ProbeCache:
    """Probe results within a run, keyed by user, account, namespace and the exact scopes."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self._cache: dict[tuple[str, int, str, frozenset[str], frozenset[str]], Outcome] = {}
        self.count = 0

    async def outcome(
        self,
        user: str,
        hub_id: int,
        scopes: Sequence[str],
        optional: Sequence[str] = (),
        namespace: str = "",
        tally: list[int] | None = None,
    ) -> Outcome:
        key = (user, hub_id, namespace, frozenset(scopes), frozenset(optional))
        tally = tally if tally is not None else [0]
        if key not in self._cache:
            out = await self._run(user, hub_id, tuple(scopes), tuple(optional), namespace, tally)
            if out.installs != self._expected_by_monotonicity(key, out):
                # It contradicts earlier probes: repeat once and keep the second answer.
                out = await self._run(user, hub_id, tuple(scopes), tuple(optional), namespace, tally)
            self._cache[key] = out
        return self._cache[key]

    async def _run(
        self, user: str, hub_id: int, scopes: tuple[str, ...], optional: tuple[str, ...], ns: str, tally: list[int]
    ) -> Outcome:
        for _ in range(2):  # an infrastructure hiccup is retried once, like a cell
            self.count += 1
            tally[0] += 1
            walk = await self.harness.walk(WalkPlan(user, hub_id, scopes, optional, ns or None))
            if not walk.outcome.infrastructure:
                return walk.outcome
        return walk.outcome

    def _expected_by_monotonicity(
        self, key: tuple[str, int, str, frozenset[str], frozenset[str]], out: Outcome
    ) -> bool:
        """What earlier probes imply: a subset of a passing set passes, a superset of a blocked one fails."""
        user, hub, ns, scopes, optional = key
        for (u, h, n, s, o), prev in self._cache.items():
            if (u, h, n, o) != (user, hub, ns, optional) or prev.infrastructure:
                continue
            if prev.installs and scopes <= s:
                return True
            if prev.blocked and s <= scopes:
                return False
        return out.installs


async def binary_splitting(items: Sequence[str], blocked: Test) -> tuple[list[str], bool]:
    """Culprits one at a time; assumes `items` as a whole is blocked. Returns (culprits, consistent)."""
    culprits: list[str] = []
    clean: set[str] = set()
    candidates = list(items)
    first = True
    while candidates:
        if not first and not await blocked(candidates):
            clean.update(candidates)
            break
        first = False
        group = candidates
        while len(group) > 1:
            half = group[: len(group) // 2]
            if await blocked(half):
                group = half
            else:
                clean.update(half)
                group = group[len(group) // 2 :]
        culprits.append(group[0])
        candidates = [c for c in candidates if c not in culprits and c not in clean]
    rest = [s for s in items if s not in culprits]
    consistent = set(rest) <= clean or not await blocked(rest)
    return culprits, consistent


async def ddmin(items: Sequence[str], passes_without: Test) -> list[str]:
    """A 1-minimal removal set C with passes_without(C); assumes passes_without(items)."""
    c = list(items)
    n = 2
    while len(c) >= 2:
        chunk = max(1, len(c) // n)
        subsets = [c[i : i + chunk] for i in range(0, len(c), chunk)]
        reduced = False
        for subset in subsets:
            if await passes_without(subset):
                c, n, reduced = subset, 2, True
                break
        if not reduced:
            for subset in subsets:
                complement = [x for x in c if x not in subset]
                if complement and await passes_without(complement):
                    c, n, reduced = complement, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(c):
                break
            n = min(len(c), n * 2)
    return c


class Diagnoser:
    def __init__(self, harness: Harness, probes: ProbeCache | None = None, verify_installs: bool = True) -> None:
        self.harness = harness
        self.probes = probes or ProbeCache(harness)
        # Remedies that install (a super admin's first install) run only where that is harmless.
        self.verify_installs = verify_installs

    def _super_admin(self, cell: Cell) -> str | None:
        for user in self.harness.matrix.spec.users:
            if user.super_admin and cell.account.id in user.accounts:
                return user.id
        return None

    async def diagnose(self, cell: Cell, result: CellResult) -> Diagnosis:
        tally = [0]
        user, hub = cell.user.id, cell.account.hub_id
        requested = list(dict.fromkeys(s for s in cell.scope_set.scopes if s != "oauth"))
        optional = tuple(cell.scope_set.optional)
        ns = self.harness.namespace(cell.id, "diag") if cell.scope_set.installed_by else ""
        if ns:  # replay the precondition inside the diagnosis namespace
            await self.harness.walk(WalkPlan.for_cell(cell, cell.scope_set.installed_by, namespace=ns, approve=True))

        async def blocked(scopes: Sequence[str]) -> bool:
            return (await self.probes.outcome(user, hub, scopes, optional, ns, tally)).blocked

        async def passes_without(removed: Sequence[str]) -> bool:
            keep = [s for s in requested if s not in removed]
            return (await self.probes.outcome(user, hub, keep, optional, ns, tally)).installs

        remedies: list[Remedy] = []
        missing = list(result.missing_permissions)
        if await blocked([]):
            # Not even the base scope installs: the installer is the problem, not any one scope.
            sa = self._super_admin(cell)
            if sa and sa != user:
                remedies.append(await self._super_admin_first(cell, sa, tally))
            if MARKETPLACE in missing or not missing:
                remedies.append(Remedy("grant_permissions", f"Give {user} {MARKETPLACE} in this account.", None))
            summary = f"{user} cannot install this app in {cell.account.id} with any scope: " + (
                "HubSpot asks for approval first."
                if result.outcome is Outcome.NEEDS_APPROVAL
                else "an installer right is missing (Marketplace Access or the first install)."
            )
            return Diagnosis((), "installer", (), tuple(missing), tuple(remedies), tally[0], "base-probe", summary, 1)

        base_probes = tally[0]  # the base probe above is not part of the search
        culprits, consistent = await binary_splitting(requested, blocked)
        method = "binary-splitting"
        if not consistent:
            method = "ddmin"
            culprits = await ddmin(requested, passes_without)
        search = tally[0] - base_probes
        findings = [await self._attribute(cell, scope, result, tally) for scope in culprits]
        levels = {f.level for f in findings}
        attribution = levels.pop() if len(levels) == 1 else "mixed"
        if not missing:
            missing = sorted({p for f in findings if f.level == "user" for p in CATALOG[f.scope].permissions})
        remedies.append(await self._optional_remedy(cell, culprits, ns, tally))
        for f in findings:
            if f.level == "account":
                remedies.append(Remedy("upgrade_account", f"{cell.account.id} needs {f.hint} for {f.scope}.", None))
        if any(f.level == "user" for f in findings) and missing:
            remedies.append(Remedy("grant_permissions", f"Give {user}: {', '.join(missing)}.", None))
        names = ", ".join(culprits)
        summary = f"Blocked by {names} ({attribution}-level)" if culprits else "No single scope explains the denial"
        return Diagnosis(
            tuple(culprits),
            attribution,
            tuple(findings),
            tuple(missing),
            tuple(remedies),
            tally[0],
            method,
            summary,
            search,
        )

    async def _attribute(self, cell: Cell, scope: str, result: CellResult, tally: list[int]) -> ScopeFinding:
        hub = cell.account.hub_id
        if cell.user.super_admin:
            return ScopeFinding(scope, "account", products_needed(scope))
        sa = self._super_admin(cell)
        if sa is not None:
            out = await self.probes.outcome(sa, hub, [scope], tally=tally)
            if out.blocked:
                return ScopeFinding(scope, "account", products_needed(scope))
            if out.installs:
                perms = ", ".join(CATALOG[scope].permissions) or "a super admin's rights"
                return ScopeFinding(scope, "user", perms)
        if result.outcome is Outcome.DENIED_ACCOUNT:
            return ScopeFinding(scope, "account", products_needed(scope))
        return ScopeFinding(scope, "unknown")

    async def _optional_remedy(self, cell: Cell, culprits: list[str], ns: str, tally: list[int]) -> Remedy:
        keep = [s for s in cell.scope_set.scopes if s not in culprits]
        optional = [*cell.scope_set.optional, *culprits]
        out = await self.probes.outcome(cell.user.id, cell.account.hub_id, keep, optional, ns, tally)
        moved = ", ".join(culprits)
        if out.installs:
            return Remedy(
                "optional_scope", f"Move {moved} to optional_scope: installs without them.", True, out, tuple(culprits)
            )
        if out is Outcome.APP_MISCONFIGURED:
            return Remedy(
                "optional_scope",
                f"Moving {moved} to optional_scope needs the app's scope settings to list "
                "them as optional first (HubSpot reports a scope mismatch).",
                False,
                out,
                tuple(culprits),
            )
        return Remedy(
            "optional_scope",
            f"Moving {moved} to optional_scope still ends in {out.value}.",
            False,
            out,
            tuple(culprits),
        )

    async def _super_admin_first(self, cell: Cell, super_admin: str, tally: list[int]) -> Remedy:
        if not self.verify_installs:
            return Remedy(
                "super_admin_first", f"Have {super_admin} install first (not probed: it would install).", None
            )
        ns = self.harness.namespace(cell.id, "remedy-super-admin")
        hub, scopes, optional = cell.account.hub_id, tuple(cell.scope_set.scopes), tuple(cell.scope_set.optional)
        first = await self.harness.walk(WalkPlan.for_cell(cell, super_admin, namespace=ns, approve=True))
        self.probes.count += 1
        tally[0] += 1
        if not first.outcome.installs:
            return Remedy(
                "super_admin_first",
                f"{super_admin} cannot install it either ({first.outcome.value}).",
                False,
                first.outcome,
            )
        out = await self.probes.outcome(cell.user.id, hub, scopes, optional, ns, tally)
        await self.harness.reset(ns)
        verdict = "then passes" if out.installs else f"still ends in {out.value}"
        return Remedy(
            "super_admin_first", f"After {super_admin} installs first, {cell.user.id} {verdict}.", out.installs, out
        )
