"""The page pool's spare pages, with stand-ins for the browser: made in the background, handed out once, and
never one made for a browser that was replaced meanwhile (the end-to-end tests use a real browser)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from scopematrix.flow.sessions import PagePool


class FakeContext:
    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.closed = False
        self.cookies: list[Any] = []

    async def new_page(self) -> object:
        await self.gate.wait()  # the test decides when a page is ready
        return object()

    async def add_cookies(self, cookies: list[Any]) -> None:
        self.cookies = cookies

    async def close(self) -> None:
        self.closed = True


class FakeContexts:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.made: list[tuple[object, FakeContext]] = []  # (the state it was made with, the context)

    async def new(self, state: object, video_dir: object = None) -> FakeContext:
        context = FakeContext(self.gate)
        self.made.append((state, context))
        return context


async def _prepared(_context: object, _page: object) -> None:
    return None


async def _until(done: Callable[[], bool]) -> None:
    """Let the pool's background work run until `done` (a bounded number of turns: a bug fails, never hangs)."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the pool's background work never got there")


def test_spares_are_made_one_at_a_time_and_each_goes_to_one_walk() -> None:
    async def scenario() -> tuple[int, list[object], list[Any]]:
        contexts = FakeContexts()
        pool = PagePool(contexts, _prepared)  # type: ignore[arg-type]
        pool.stock(2)
        pool.stock(1)  # asking for fewer never takes back what was asked
        await asyncio.sleep(0)
        started = len(contexts.made)  # one at a time: the second waits for the first
        contexts.gate.set()
        await _until(lambda: pool.spares >= 2)
        cookies = [{"name": "session", "value": "x", "url": "https://app.hubspot.com"}]
        first: Any = (await pool.lease("ann", {"cookies": cookies, "origins": []}, fresh=False))[0]
        second: Any = (await pool.lease("bob", {"cookies": []}, fresh=False))[0]
        third: Any = (await pool.lease("bob", {"cookies": []}, fresh=False))[0]  # none left: a context of its own
        assert first is not second and third is contexts.made[-1][1]
        return started, [state for state, _ in contexts.made], first.cookies

    started, states, cookies = asyncio.run(scenario())
    assert started == 1
    assert states == [None, None, {"cookies": []}]  # two spares made signed out, then one made signed in
    assert cookies == [{"name": "session", "value": "x", "url": "https://app.hubspot.com"}]  # the login's cookies


def test_a_spare_made_for_a_browser_that_was_replaced_is_never_handed_out() -> None:
    async def scenario() -> tuple[int, bool]:
        contexts = FakeContexts()
        pool = PagePool(contexts, _prepared)  # type: ignore[arg-type]
        pool.stock(1)
        await asyncio.sleep(0)  # its context is made; its page is not ready yet
        pool.forget()  # the browser died and was replaced
        contexts.gate.set()
        pool.stock(1)  # the new browser's spare
        await _until(lambda: pool.spares >= 1)
        for _ in range(10):
            await asyncio.sleep(0)  # (an old spare would have landed by now)
        made = len(contexts.made)
        context: Any = (await pool.lease("ann", {"cookies": []}, fresh=False))[0]
        return made, context is contexts.made[1][1]

    made, the_new_one = asyncio.run(scenario())
    assert made == 2 and the_new_one  # one spare per browser, and the one handed out is the new browser's
