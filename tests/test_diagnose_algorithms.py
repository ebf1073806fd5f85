from __future__ import annotations

import asyncio
import math
from itertools import combinations

import pytest

from scopematrix.diagnose import binary_splitting, ddmin


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("n", [3, 4, 8, 16])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_binary_splitting_finds_every_culprit_within_the_bound(n, d):
    if d > n:
        pytest.skip("more culprits than scopes")
    items = [f"s{i}" for i in range(n)]
    for bad in list(combinations(items, d))[:20]:
        calls = 0

        culprits = set(bad)

        async def blocked(group, culprits=culprits):
            nonlocal calls
            calls += 1
            return bool(culprits & set(group))

        found, consistent = run(binary_splitting(items, blocked))
        assert set(found) == set(bad) and consistent
        assert calls <= d * math.ceil(math.log2(n / d)) + 2 * d + 1


def test_ddmin_handles_a_conjunctive_cause():
    items = ["a", "b", "c", "d"]

    async def passes_without(removed):  # blocked only while both b and c are requested
        return "b" in removed or "c" in removed

    found = run(ddmin(items, passes_without))
    assert len(found) == 1 and found[0] in {"b", "c"}
