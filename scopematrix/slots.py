"""The run's browser-context slots (`--concurrency`), handed out by priority: the longest chain of work
first, so that a diagnosis runs while the cells do instead of after them."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

# Lower goes first, the longest chain of walks first (list scheduling on the critical path):
# - a cell the baseline expects to be refused whose scope set needs a precondition install (the install, the
#   cell, then a diagnosis that replays the install in its namespace);
# - another cell the baseline expects to be refused (the cell, then its diagnosis);
# - a probe of a diagnosis under way;
# - any other cell.
# The expectation orders the work, it decides nothing.
CELL_CHAIN_FIRST, CELL_FIRST, PROBE, CELL = 0, 1, 2, 3


def default_concurrency() -> int:
    """Contexts in flight by default: a walk mostly waits on HubSpot (about 1 core-second of Chromium per 8
    walks here), so 4 per core keep the cores busy; capped at 8 to stay gentle with HubSpot's servers."""
    import os

    return max(1, min(8, 4 * (os.cpu_count() or 1)))


class Slots:
    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = CELL) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiters:
            self._free -= 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed a slot as it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():  # (a cancelled waiter is skipped)
                waiter.set_result(None)
                return
        self._free += 1
