"""The run's browser-context slots (`--concurrency`), handed out by priority: the longest chain of work
first, so that a diagnosis runs while the cells do instead of after them. Within a priority, the walk of a
user with a signed-in page to spare goes first: it reuses that page instead of opening a new one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable

# Lower goes first, the longest chain of walks first (list scheduling on the critical path):
# - a cell the baseline expects to be refused whose scope set needs a precondition install (the install, the
#   cell, then a diagnosis that replays the install in its namespace);
# - a walk of the diagnosis of a cell with a precondition (replays, then probes in their namespaces);
# - another cell the baseline expects to be refused (the cell, then its diagnosis);
# - a walk of another diagnosis under way;
# - any other cell.
# The expectation orders the work, it decides nothing.
CELL_CHAIN_FIRST, PROBE_CHAIN, CELL_FIRST, PROBE, CELL = 0, 1, 2, 3, 4

# How a user's walks rank for a freed slot (lower first): see PagePool.rank.
Rank = Callable[[str], tuple[int, int]]


def default_concurrency() -> int:
    """Contexts in flight by default: a walk mostly waits on HubSpot, so 5 per core keep the cores busy;
    capped at 10 to stay gentle with HubSpot's servers. Measured on 2 cores (42 cells, 0.3 s a response,
    interleaved): with diagnosis, 8 left the cores a third idle (1.1-1.6 of 2 busy) and took 9.7-10.0 s
    where 10 took 9.0-9.3 s; without diagnosis 8, 10 and 12 were within noise (6.8-7.1 s)."""
    import os

    return max(1, min(10, 5 * (os.cpu_count() or 1)))


class Slots:
    """At most `n` walks at once. A freed slot goes to the highest priority waiting; within it, to the user
    `rank` puts first (none given: every user ranks alike), and within a user, to the earliest asked.

    The preference never leaves a slot idle while a walk waits, and never passes over a higher priority."""

    def __init__(self, n: int, rank: Rank | None = None) -> None:
        self._free = n
        self._rank: Rank = rank or (lambda _user: (0, 0))
        # priority -> user -> (order asked, waiter), oldest first; a user's queue is dropped once empty
        self._waiting: dict[int, dict[str, deque[tuple[int, asyncio.Future[None]]]]] = {}
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = CELL, user: str = "") -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue = self._waiting.setdefault(priority, {}).setdefault(user, deque())
            queue.append((next(self._order), waiter))
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
        while self._waiting:
            priority = min(self._waiting)
            users = self._waiting[priority]
            for queue in users.values():
                while queue and queue[0][1].done():  # (a cancelled waiter is skipped)
                    queue.popleft()
            for user in [u for u, q in users.items() if not q]:
                del users[user]
            if not users:
                del self._waiting[priority]
                continue
            user = min(users, key=lambda u: (self._rank(u), users[u][0][0]))
            _, waiter = users[user].popleft()
            if not users[user]:
                del users[user]
                if not users:
                    del self._waiting[priority]
            waiter.set_result(None)
            return
        self._free += 1
