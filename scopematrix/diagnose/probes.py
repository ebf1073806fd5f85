"""Probes: authorize flows with a subset of the requested scopes that stop at the decision and never install.
What each probe must send (the probing app's settings), and every answer kept for the run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace

from scopematrix.flow import Harness, Walk, WalkPlan
from scopematrix.matrix import AppEntry, AppScopes, Cell
from scopematrix.model import Outcome
from scopematrix.slots import PROBE, Slots
from scopematrix.timeline import Timeline

ProbeKey = tuple[str, int, str, str, frozenset[str], frozenset[str]]


class Inconclusive(Exception):
    """A probe got no decision from HubSpot; the diagnosis says so instead of guessing."""

    @staticmethod
    def probe(scopes: Sequence[str], outcome: Outcome) -> Inconclusive:
        return Inconclusive(
            f"HubSpot answered the probe with {{{', '.join(scopes) or 'no scope'}}} with {outcome.value}"
        )


# The slot priority of the diagnosis under way in this task (and the tasks it starts): see Walks.
PRIORITY: ContextVar[int] = ContextVar("scopematrix_probe_priority", default=PROBE)


class Walks:
    """The diagnosis's walks, each in a slot of the run's (`slots`: the engine's concurrency bound): a cell's
    slot is free while its diagnosis waits, and probes of several denied cells fill the free slots. A walk
    takes the priority of the diagnosis that asked for it first (PRIORITY, set by the diagnoser)."""

    def __init__(self, harness: Harness, slots: Slots | None = None, timeline: Timeline | None = None) -> None:
        self.harness = harness
        self.slots = slots or Slots(1_000_000)  # none given: unbounded, as before slots existed
        self.timeline = timeline or Timeline()

    async def walk(self, plan: WalkPlan) -> Walk:
        async with self.held(plan):
            return await self.harness.walk(replace(plan, outcome_only=True))  # a diagnosis keeps outcomes only

    @contextlib.asynccontextmanager
    async def held(self, plan: WalkPlan) -> AsyncIterator[None]:
        """A slot for one walk of `plan`, and its span on the timeline."""
        async with (
            self.slots.slot(PRIORITY.get(), plan.user_id),
            self.timeline.span("probe", f"{plan.user_id}@{plan.hub_id}: {' '.join(plan.scopes)}"),
        ):
            yield


class ProbeCache:
    """Probe results within a run, keyed by user, account, app, namespace and the exact scopes. A probe in
    flight is awaited, not repeated, by a diagnosis that needs the same answer."""

    def __init__(self, harness: Harness, walks: Walks | None = None) -> None:
        self.harness = harness
        self.walks = walks or Walks(harness)
        self._cache: dict[ProbeKey, Outcome] = {}
        self._flying: dict[ProbeKey, asyncio.Future[Outcome]] = {}
        self._looks: dict[ProbeKey, asyncio.Future[Outcome | None]] = {}  # cells' looks under way
        self.count = 0

    async def outcome(
        self,
        user: str,
        hub_id: int,
        scopes: Sequence[str],
        optional: Sequence[str] = (),
        namespace: str = "",
        tally: list[int] | None = None,
        app: str = "",
    ) -> Outcome:
        key = self._key(user, hub_id, app, namespace, scopes, optional)
        tally = tally if tally is not None else [0]
        if key in self._looks:
            await asyncio.shield(self._looks[key])  # a cell is asking the same now: its answer, if it gets one
        if key in self._cache:
            return self._cache[key]
        if key not in self._flying:
            plan = WalkPlan(user, hub_id, tuple(scopes), tuple(optional), namespace or None, app=app)
            self._flying[key] = asyncio.ensure_future(self._answer(key, plan, tally))
        try:
            return await asyncio.shield(self._flying[key])
        finally:
            if self._flying.get(key) is not None and self._flying[key].done():
                del self._flying[key]

    def look(self, plan: WalkPlan) -> Callable[[Outcome | None], None]:
        """A cell's own walk of `plan` starts: a probe of the same request in the same namespace waits for the
        decision it sees (the answer that probe would get), and walks itself only if none comes."""
        key = self._key(plan.user_id, plan.hub_id, plan.app, plan.namespace or "", plan.scopes, plan.optional)
        seen: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._looks.setdefault(key, seen)

        def decided(outcome: Outcome | None) -> None:
            if outcome is not None:
                self._cache.setdefault(key, outcome)
            if self._looks.get(key) is seen:
                del self._looks[key]
            seen.set_result(outcome)

        return decided

    def _key(
        self, user: str, hub_id: int, app: str, namespace: str, scopes: Sequence[str], optional: Sequence[str]
    ) -> ProbeKey:
        app = app or self.harness.target.main_app  # ("" is the main app)
        return (user, hub_id, app, namespace, frozenset(scopes), frozenset(optional))

    async def _answer(self, key: ProbeKey, plan: WalkPlan, tally: list[int]) -> Outcome:
        out = await self._run(plan, tally)
        if out.installs != self._expected_by_monotonicity(key, out):
            # It contradicts earlier probes: repeat once and keep the second answer.
            out = await self._run(plan, tally)
        self._cache[key] = out
        return out

    async def _run(self, plan: WalkPlan, tally: list[int]) -> Outcome:
        for _ in range(2):  # an infrastructure hiccup is retried once, like a cell
            self.count += 1
            tally[0] += 1
            walk = await self.walks.walk(plan)
            if not walk.outcome.infrastructure:
                return walk.outcome
        return walk.outcome

    def _expected_by_monotonicity(self, key: ProbeKey, out: Outcome) -> bool:
        """What earlier probes imply: a subset of a passing set passes, a superset of a blocked one fails."""
        *where, scopes, optional = key
        for (*w, s, o), prev in self._cache.items():
            if w != where or o != optional:
                continue
            if prev.installs and scopes <= s:
                return True
            if prev.blocked and s <= scopes:
                return False
        return out.installs


@dataclass(frozen=True)
class ProbePlan:
    """How to probe one cell: with which app, what every probe must send, and what may be left out."""

    app: str  # the matrix app id probes use
    fixed: tuple[str, ...]  # sent in every probe (the app's required scopes)
    droppable: tuple[str, ...]  # the candidates
    optional: tuple[str, ...]  # sent as optional_scope in every probe
    probe_app: bool

    @staticmethod
    def for_cell(cell: Cell, settings: AppScopes | None, app: str, probe: AppEntry | None) -> ProbePlan:
        """Every probe carries every scope the probing app's declared settings require, verbatim (`oauth`
        too, when declared): nothing is dropped or added on a belief about what HubSpot implies."""
        requested = tuple(dict.fromkeys(cell.scope_set.scopes))
        if probe is not None:
            fixed = tuple(probe.scopes.required) if probe.scopes is not None else ()
            # Optional scopes never block (HubSpot drops unavailable ones): probes leave them out.
            return ProbePlan(probe.id, fixed, tuple(s for s in requested if s not in fixed), (), True)
        fixed = tuple(settings.required) if settings is not None else ()
        droppable = tuple(s for s in requested if s not in fixed)
        return ProbePlan(app, fixed, droppable, tuple(cell.scope_set.optional), False)

    @property
    def base_is_installer(self) -> bool:
        """The smallest valid probe carries no scope a cell could be blocked by on its own: blocked, it says
        the installer can't install this app at all. With the probe app, its required scopes are the base
        of every install; an app's own required scopes may hold the culprit."""
        return self.probe_app or set(self.fixed) <= {"oauth"}


class Replays:
    """The installs a diagnosis's probes need made first: the cell's precondition (its installed_by user's
    install), with the probing app, which the probes then look at; a super admin's first install for a remedy.
    Each is the run's shared install of the same thing (SharedInstalls): made once, whoever asks first (a cell's
    precondition included), in a namespace where nothing else is installed. Its walk takes a slot here."""

    def __init__(self, harness: Harness, walks: Walks | None = None) -> None:
        self.harness = harness
        self.walks = walks or Walks(harness)

    async def ensure(self, cell: Cell, plan: ProbePlan) -> str:
        """The namespace where `plan`'s probes of this cell run: none without a precondition; with one, where
        the precondition is made with the probing app (with the probe app: every scope a probe may ask for)."""
        installer = cell.scope_set.installed_by
        if not installer:
            return ""
        replay = WalkPlan.for_cell(cell, installer, approve=True, app=plan.app, exchange=False)
        if plan.probe_app:
            hub = cell.account.hub_id
            replay = WalkPlan(installer, hub, (*plan.fixed, *plan.droppable), (), approve=True, app=plan.app,
                              exchange=False)  # fmt: skip
        ns, _ = await self.made(replay)
        return ns

    async def made(self, install: WalkPlan, tally: list[int] | None = None) -> tuple[str, Walk]:
        """The install's namespace and walk, made once; counted in `tally` by whoever makes it. Made here, it
        is made in a slot taken first (a cell that needs the same install waits for it inside its own slot)."""
        return await self.harness.installs.made(install, lambda: self.walks.held(install), tally)

    async def real_app(self, cell: Cell) -> str:
        """The precondition with the cell's own app (for the probes that use it): its namespace."""
        app = self.harness.matrix.app_of(cell.scope_set)
        return await self.ensure(cell, ProbePlan.for_cell(cell, app.scopes, app.id, None))


class YourApp:
    """Probes with the cell's own app: only install URLs its declared settings accept, in the namespace where
    the cell's precondition was made with it (what the cell itself saw). Every check with your app asks here,
    so two checks of the same request are the same probe, asked once."""

    def __init__(self, probes: ProbeCache, replays: Replays) -> None:
        self.probes = probes
        self.replays = replays

    async def outcome(
        self, cell: Cell, scopes: Sequence[str], optional: Sequence[str], tally: list[int]
    ) -> Outcome | None:
        """HubSpot's answer to your app's request, or None where your app's settings (unknown, or refusing
        that URL) leave no valid URL to ask with."""
        app = self.replays.harness.matrix.app_of(cell.scope_set)
        if app.scopes is None or not app.scopes.allows(scopes, optional):
            return None
        ns = await self.replays.real_app(cell)
        return await self.probes.outcome(cell.user.id, cell.account.hub_id, scopes, optional, ns, tally, app.id)
