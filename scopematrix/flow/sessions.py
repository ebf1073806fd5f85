"""Signed-in users: one login per user per run (shared by the run's processes), at a polite rate, and a pool
of each user's signed-in pages reused between walks."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from scopematrix.flow.browsing import Contexts, Navigations
from scopematrix.flow.records import LoginFailure, StorageState, slug
from scopematrix.flow.signin import SignedIn, SignIn
from scopematrix.target import Target


class SharedLogins:
    """A user's signed-in state shared by the processes of one run (xdist workers, a resumed run): a file
    only this OS user can read, in a private folder outside the reports, and a lock so that one process
    logs in while the others wait for it. A state that HubSpot no longer accepts is replaced (force)."""

    def __init__(self, folder: Path, user_id: str) -> None:
        self.path = folder / f"{slug(user_id)}.json"
        self._lock_path = folder / f"{slug(user_id)}.lock"
        self._fd: int | None = None

    @classmethod
    def open(cls, folder: Path | None, user_id: str) -> SharedLogins | None:
        """None (this process logs in on its own) unless the folder is ours alone: a folder in the shared temp
        directory that another OS user made (or a symlink) is never trusted with a session; ours is made 0700."""
        if folder is None:
            return None
        try:
            for level in (folder.parents[1], folder.parent, folder):
                level.mkdir(mode=0o700, exist_ok=True)
                if level.is_symlink() or level.lstat().st_uid != os.getuid():
                    return None
                level.chmod(0o700)
        except OSError:
            return None
        return cls(folder, user_id)

    async def __aenter__(self) -> SharedLogins:
        self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def read(self) -> StorageState | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, state: StorageState) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        tmp.replace(self.path)


def shared_logins_dir(run_id: str) -> Path:
    """Where the processes of run `run_id` share logins: the OS user's private temp folder, never the reports."""
    return Path(tempfile.gettempdir()) / f"scopematrix-{os.getuid()}" / "logins" / run_id


# Logins start at least this far apart. Started together, their pages come back together at each of a login's
# five steps and queue for the same cores at once (measured here: six logins together took 2.7 s, one alone
# 2.0 s), and no cell of theirs starts before the last step. Spaced, the first user's cells start while the
# others still log in: measured, 0.3-0.5 s off a 7.4 s run of 42 cells, and the same with 0.05 to 0.2 s.
LOGIN_SPACING_S = 0.1


class LoginLimiter:
    """Logins start at least `spacing_s` apart, and at most `per_minute` per minute (politeness towards live
    HubSpot)."""

    def __init__(self, per_minute: float | None, spacing_s: float = LOGIN_SPACING_S) -> None:
        self.interval = max(60.0 / per_minute if per_minute else 0.0, spacing_s)
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self.interval


Lease = tuple[BrowserContext, Page]


def cookies_only(state: StorageState) -> bool:
    """Whether a signed-in state is its cookies alone (no origin keeps storage): then a new context plus those
    cookies is exactly what Playwright makes of `new_context(storage_state=...)`."""
    origins = state.get("origins") or []
    return isinstance(origins, list) and all(
        isinstance(o, dict) and not any(v for k, v in o.items() if k != "origin") for o in origins
    )


class PagePool:
    """Each user's idle signed-in pages. A new page costs a context and a renderer: measured here, a walk in
    a new page took 130-150 ms of CPU, one in a reused page 60-65 ms. Every walk of a user shares its login
    anyway. `prepare` sets a new page up for walks (the redirect route and the network listeners).

    Spare pages (`stock`) are made while the logins wait on HubSpot, before any user is known: a spare takes
    a user's login cookies when a walk needs a new page, where a new context would cost 60 ms of CPU then."""

    def __init__(self, contexts: Contexts, prepare: Callable[[BrowserContext, Page], Awaitable[None]]) -> None:
        self.contexts = contexts
        self.prepare = prepare
        self._idle: dict[str, list[Lease]] = {}
        self._open: dict[str, set[BrowserContext]] = {}  # each user's pages (one a context), idle or in a walk
        self._spares: list[Lease] = []  # signed out, prepared, no user's yet
        self._wanted = 0  # spares asked for so far (stock), made or being made
        self._made = 0
        self._stocking: asyncio.Task[None] | None = None
        self._generation = 0  # one per browser: a spare made for a browser that died is never handed out

    def stock(self, count: int) -> None:
        """Make spare pages in the background, one at a time, until `count` have been made in all."""
        self._wanted = max(self._wanted, count)
        if self._made < self._wanted and (self._stocking is None or self._stocking.done()):
            self._stocking = asyncio.ensure_future(self._make_spares(self._generation))

    async def _make_spares(self, generation: int) -> None:
        while generation == self._generation and self._made < self._wanted:
            self._made += 1
            try:
                context = await self.contexts.new(None)
            except PlaywrightError:
                return  # (walks open pages of their own)
            try:
                page = await context.new_page()
                await self.prepare(context, page)
            except PlaywrightError:
                await _close_quietly(context)
                return
            if generation != self._generation:  # the browser was replaced meanwhile
                await _close_quietly(context)
                return
            self._spares.append((context, page))

    @property
    def spares(self) -> int:
        return len(self._spares)

    def rank(self, user_id: str) -> tuple[int, int]:
        """How the user's next walk ranks for a free slot, lower first: a user with an idle page (reused, not
        opened), then the user with the fewest pages open (a new page spreads over the users)."""
        return (0 if self._idle.get(user_id) else 1, len(self._open.get(user_id, ())))

    async def lease(self, user_id: str, state: StorageState, fresh: bool, video_dir: Path | None = None) -> Lease:
        """An idle page of the user's from an earlier walk, or (`fresh`) a new context."""
        idle = self._idle.get(user_id)
        if idle and not fresh:
            return idle.pop()
        if self._spares and not fresh and video_dir is None and cookies_only(state):
            context, page = self._spares.pop(0)
            self._open.setdefault(user_id, set()).add(context)
            try:
                await context.add_cookies(state.get("cookies") or [])
            except BaseException:
                await self._close(user_id, context)
                raise
            return context, page
        context = await self.contexts.new(state, video_dir)
        self._open.setdefault(user_id, set()).add(context)
        try:
            page = await context.new_page()
            await self.prepare(context, page)
        except BaseException:
            await self._close(user_id, context)
            raise
        return context, page

    async def adopt(self, user_id: str, context: BrowserContext, page: Page) -> None:
        """A page signed in by the user's login, kept for the user's walks."""
        self._open.setdefault(user_id, set()).add(context)
        try:
            await self.prepare(context, page)
        except PlaywrightError:
            await self._close(user_id, context)  # (the login stands: its walks open pages of their own)
            return
        self._idle.setdefault(user_id, []).append((context, page))

    async def give_back(self, user_id: str, context: BrowserContext, page: Page, reusable: bool) -> None:
        if reusable and not page.is_closed():
            self._idle.setdefault(user_id, []).append((context, page))
            return
        await self._close(user_id, context)

    async def drop(self, user_id: str) -> None:
        """Closes the user's idle pages: their cookies belong to a session being replaced."""
        for context, _ in self._idle.pop(user_id, []):
            await self._close(user_id, context)

    async def _close(self, user_id: str, context: BrowserContext) -> None:
        self._open.get(user_id, set()).discard(context)
        await _close_quietly(context)

    def forget(self) -> None:
        """Forgets every idle and spare page (their contexts close, or closed, with the browser)."""
        self._generation += 1
        if self._stocking is not None and self._stocking is not asyncio.current_task():
            self._stocking.cancel()  # (one that restarted the browser itself stops at its generation check)
        self._stocking = None
        self._idle.clear()
        self._open.clear()
        self._spares.clear()
        self._made = self._wanted = 0


async def _close_quietly(context: BrowserContext) -> None:
    try:
        await context.close()
    except PlaywrightError:
        pass


class Sessions:
    """Each user's signed-in state, logged in once: saved, shared by the run's processes, or fresh."""

    def __init__(
        self, target: Target, sign_in: SignIn, pool: PagePool, shared: Path | None, per_minute: float | None, slots: int
    ) -> None:
        self.target = target
        self.sign_in = sign_in
        self.pool = pool
        self.shared = shared
        self._limiter = LoginLimiter(per_minute)
        self._states: dict[str, StorageState | LoginFailure] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._navs: list[int] = []  # each login's navigations, until a record reports it (take_logins)
        # Bounds logins in flight: a login is a browser context too.
        self.slots = asyncio.Semaphore(slots)
        self.logins = 0

    def known(self, user_id: str) -> StorageState | LoginFailure | None:
        return self._states.get(user_id)

    async def login(self, user_id: str, force: bool = False) -> StorageState | LoginFailure:
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            if user_id in self._states and not force:
                return self._states[user_id]
            creds = self.target.credentials[user_id]
            if creds.storage_state and not force:
                state: StorageState = json.loads(Path(creds.storage_state).read_text())
                self._states[user_id] = state
                return state
            shared = SharedLogins.open(self.shared, user_id)
            if shared is None:
                return await self._fresh(user_id, None)
            async with shared:  # one process logs the user in; the others of the run wait and reuse it
                # Another process's login, unless it is the very state that just failed here.
                state_or_none = shared.read()
                if state_or_none is not None and (not force or state_or_none != self._states.get(user_id)):
                    self._states[user_id] = state_or_none
                    return state_or_none
                return await self._fresh(user_id, shared)

    async def _fresh(self, user_id: str, shared: SharedLogins | None) -> StorageState | LoginFailure:
        await self.pool.drop(user_id)
        await self._limiter.wait()
        self.logins += 1
        navigations = Navigations()
        try:
            async with self.slots:
                signed_in = await self.sign_in.once(user_id, navigations)
        finally:
            self._navs.append(navigations.count)
        if isinstance(signed_in, SignedIn):
            await self.pool.adopt(user_id, signed_in.context, signed_in.page)
        outcome = signed_in.state if isinstance(signed_in, SignedIn) else signed_in
        if not (isinstance(outcome, LoginFailure) and outcome.outcome.infrastructure):
            self._states[user_id] = outcome  # infrastructure failures are retried, not remembered
            if shared is not None and not isinstance(outcome, LoginFailure):
                shared.write(outcome)
        return outcome

    def take_logins(self) -> dict[str, float]:
        """The logins this process made since the last call, and their navigations, for the next record: so
        every login is counted on some cell (whichever cell, precondition or diagnosis needed it)."""
        done, self._navs = self._navs, []
        return {"logins": float(len(done)), "login_navigations": float(sum(done))} if done else {}
