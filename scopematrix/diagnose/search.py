"""Searches for the scopes that block: group testing (binary splitting, one culprit at a time), and delta
debugging (ddmin) where the probes contradict the assumption that a scope blocks on its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

Test = Callable[[Sequence[str]], Awaitable[bool]]


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


async def one_at_a_time(items: Sequence[str], blocked: Test) -> tuple[list[str], bool]:
    """Each item alone, concurrently; assumes `items` as a whole is blocked. Consistent when some item blocks
    on its own (a cause that needs two items together is left to ddmin)."""
    import asyncio

    answers = await asyncio.gather(*(blocked([item]) for item in items))
    culprits = [item for item, bad in zip(items, answers, strict=True) if bad]
    return culprits, bool(culprits)


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
