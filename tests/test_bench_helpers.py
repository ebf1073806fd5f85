"""The benchmark's own helpers: the numbers it reports are only as good as these."""

from __future__ import annotations

import os

from bench.arms import busy_seconds
from bench.run import replicate, synthetic, tree_pss_mb
from scopematrix.matrix import load_matrix
from scopematrix.model import Outcome


def test_replicated_matrix_has_k_times_the_cells_with_unique_ids():
    matrix = load_matrix()
    bigger = replicate(matrix, 3)
    assert len(bigger.cells()) == 3 * len(matrix.cells()) == len({c.id for c in bigger.cells()})


def test_synthetic_records_cover_every_outcome_with_unique_cells():
    records = synthetic(1_000)
    assert len({r.cell_id for r in records}) == 1_000
    assert {r.outcome for r in records} == set(Outcome)


def test_memory_and_cpu_probes_read_real_values():
    assert tree_pss_mb(os.getpid()) > 10
    before = busy_seconds()
    sum(i * i for i in range(2_000_000))
    assert busy_seconds() > before


def test_slots_serve_probes_before_cells_not_yet_started_and_never_exceed_the_bound():
    import asyncio

    from scopematrix.slots import CELL, PROBE, Slots

    async def scenario() -> tuple[list[str], int]:
        slots, order, peak, inside = Slots(2), [], [0], [0]

        async def job(name: str, priority: int) -> None:
            async with slots.slot(priority):
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                order.append(name)
                await asyncio.sleep(0.01)
                inside[0] -= 1

        first = [asyncio.create_task(job(f"cell{i}", CELL)) for i in range(2)]  # take both slots
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(job("cell2", CELL)), asyncio.create_task(job("cell3", CELL))]
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(job("gone", PROBE))
        probe = asyncio.create_task(job("probe", PROBE))
        await asyncio.sleep(0)
        cancelled.cancel()  # a waiter cancelled in the queue is skipped, its place not lost
        await asyncio.gather(*first, *waiting, probe, return_exceptions=True)
        return order, peak[0]

    order, peak = asyncio.run(scenario())
    assert order == ["cell0", "cell1", "probe", "cell2", "cell3"] and peak == 2


def test_the_timeline_idle_fraction_counts_the_slots_no_cell_or_probe_used():
    from scopematrix.timeline import Span, idle_fraction

    spans = [Span("login", "u", 0.0, 2.0), Span("cell", "a", 2.0, 4.0), Span("cell", "b", 2.0, 4.0),
             Span("probe", "p", 3.0, 4.0)]  # fmt: skip
    # 2 slots x 4 s = 8 slot-seconds; cells and the probe used 5 of them (the login phase left both idle)
    assert idle_fraction(spans, 2) == round(1 - 5 / 8, 3)
    assert idle_fraction([Span("login", "u", 0.0, 1.0)], 2) == 0.0


def test_slots_serve_the_longest_chain_of_work_first():
    """A refused cell with a precondition (install, cell, diagnosis), then a walk of such a cell's diagnosis,
    then another expected refusal, then a walk of another diagnosis, then any other cell; the same priority in
    the order asked."""
    import asyncio

    from scopematrix.slots import CELL, CELL_CHAIN_FIRST, CELL_FIRST, PROBE, PROBE_CHAIN, Slots

    async def scenario() -> list[str]:
        slots, order = Slots(1), []

        async def job(name: str, priority: int) -> None:
            async with slots.slot(priority):
                order.append(name)
                await asyncio.sleep(0.001)

        holder = asyncio.create_task(job("holder", CELL))
        await asyncio.sleep(0)
        queued = [("cell", CELL), ("probe", PROBE), ("first", CELL_FIRST), ("chain", CELL_CHAIN_FIRST),
                  ("probe2", PROBE), ("replay", PROBE_CHAIN), ("chain2", CELL_CHAIN_FIRST)]  # fmt: skip
        tasks = [asyncio.create_task(job(n, p)) for n, p in queued]
        await asyncio.gather(holder, *tasks)
        return order

    assert asyncio.run(scenario()) == ["holder", "chain", "chain2", "replay", "first", "probe", "probe2", "cell"]


def test_a_freed_slot_goes_to_a_user_with_a_page_to_spare_within_its_priority():
    """Same priority: the user with an idle page first, then the user with the fewest pages open, then the
    earliest asked. A higher priority is never passed over, and no slot idles while a walk waits."""
    import asyncio

    from scopematrix.slots import CELL, PROBE, Slots

    idle = {"ann": 0, "bob": 1, "cy": 0}
    open_pages = {"ann": 1, "bob": 3, "cy": 2}

    def rank(user: str) -> tuple[int, int]:
        return (0 if idle[user] else 1, open_pages[user])

    async def scenario() -> list[str]:
        slots, order = Slots(1, rank), []

        async def job(name: str, user: str, priority: int = CELL) -> None:
            async with slots.slot(priority, user):
                order.append(name)
                if name == "bob1":
                    idle["bob"] = 0  # bob's spare page is in use now
                await asyncio.sleep(0.001)

        holder = asyncio.create_task(job("holder", "cy"))
        await asyncio.sleep(0)
        queued = [("cy1", "cy"), ("ann1", "ann"), ("bob1", "bob"), ("bob2", "bob"), ("cy2", "cy")]
        tasks = [asyncio.create_task(job(n, u)) for n, u in queued]
        tasks.append(asyncio.create_task(job("probe", "cy", PROBE)))
        await asyncio.gather(holder, *tasks)
        return order

    # the probe outranks every cell; then bob (an idle page); then ann (1 page) before cy (2), bob (3)
    assert asyncio.run(scenario()) == ["holder", "probe", "bob1", "ann1", "cy1", "cy2", "bob2"]


def test_without_a_rank_slots_keep_the_order_asked():
    import asyncio

    from scopematrix.slots import Slots

    async def scenario() -> list[str]:
        slots, order = Slots(1), []

        async def job(name: str, user: str) -> None:
            async with slots.slot(user=user):
                order.append(name)
                await asyncio.sleep(0.001)

        names = [("a", "u"), ("b", "v"), ("c", "u"), ("d", "w")]
        await asyncio.gather(*(asyncio.create_task(job(n, u)) for n, u in names))
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c", "d"]


def test_a_cell_in_its_slot_never_waits_for_an_install_that_waits_for_a_slot():
    """One slot. A diagnosis asks for an install while a cell holds the slot; the cell then needs the same
    install. The cell makes it in its own slot (the install's walk takes none), the diagnosis, once it has the
    slot, finds it made: one walk, one namespace, no deadlock."""
    import asyncio

    from scopematrix.flow.install import Namespaces, SharedInstalls
    from scopematrix.flow.records import Walk, WalkPlan
    from scopematrix.model import Outcome
    from scopematrix.slots import PROBE, Slots

    walked: list[str | None] = []

    async def walk(plan: WalkPlan) -> Walk:
        walked.append(plan.namespace)
        await asyncio.sleep(0.01)
        return Walk(Outcome.GRANTED)

    async def scenario() -> tuple[str, str]:
        slots = Slots(1)
        installs = SharedInstalls(Namespaces(None, "t", None), walk, "tag", "main")  # type: ignore[arg-type]
        install = WalkPlan("super-admin", 1, ("oauth",), approve=True, exchange=False)
        cell_in_slot, diagnosis_waits = asyncio.Event(), asyncio.Event()

        async def cell() -> str:
            async with slots.slot():
                cell_in_slot.set()
                await diagnosis_waits.wait()  # the diagnosis has asked, and waits for the slot
                ns, _ = await installs.made(install)
                return ns

        async def diagnosis() -> str:
            await cell_in_slot.wait()
            asking = asyncio.ensure_future(installs.made(install, lambda: slots.slot(PROBE)))
            await asyncio.sleep(0.01)
            diagnosis_waits.set()
            ns, _ = await asking
            return ns

        cell_ns, diag_ns = await asyncio.wait_for(asyncio.gather(cell(), diagnosis()), timeout=5)
        return cell_ns, diag_ns

    cell_ns, diag_ns = asyncio.run(scenario())
    assert cell_ns == diag_ns and walked == [cell_ns]


def test_logins_start_a_spacing_apart_and_never_faster_than_the_rate():
    """Six logins asked at once start one after another, at least the spacing apart (a lower bound: a busy
    machine only widens the gaps); a rate per minute that is slower wins over the spacing."""
    import asyncio
    import itertools
    import time

    from scopematrix.flow.sessions import LOGIN_SPACING_S, LoginLimiter

    async def starts(limiter: LoginLimiter, n: int) -> list[float]:
        out: list[float] = []

        async def login() -> None:
            await limiter.wait()
            out.append(time.monotonic())

        await asyncio.gather(*(login() for _ in range(n)))
        return out

    spaced = asyncio.run(starts(LoginLimiter(None), 6))
    assert all(b - a >= LOGIN_SPACING_S * 0.99 for a, b in itertools.pairwise(spaced)), spaced
    assert LoginLimiter(None).interval == LOGIN_SPACING_S > 0
    assert LoginLimiter(6.0).interval == 10.0  # live HubSpot's politeness: the rate wins
    assert LoginLimiter(6000.0).interval == LOGIN_SPACING_S  # faster than the spacing: the spacing wins
