"""Run cells concurrently on a private event loop and stream each finished cell to disk.

pytest (or the benchmark) submits cells and waits for their results; inside, up to `concurrency`
browser contexts are in flight, sharing one browser and one login per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Playwright, async_playwright

from scopematrix.browser import CHROMIUM_ARGS, host_rules
from scopematrix.diagnose import Diagnoser
from scopematrix.errors import UsageError
from scopematrix.flow import FlowOptions, Harness, LoginFailure
from scopematrix.matrix import Cell, Matrix
from scopematrix.model import CellResult, validation_reason
from scopematrix.slots import CELL, CELL_CHAIN_FIRST, CELL_FIRST, Slots
from scopematrix.target import Target
from scopematrix.timeline import Timeline


@dataclass(frozen=True)
class BrowserOptions:
    executable_path: str | None = None
    headless: bool = True
    slow_mo: float = 0.0
    channel: str | None = None
    connect: str | None = None  # ws:// endpoint of a Playwright browser server
    # The browser binary on the server's machine (sent as launch options; needs `run-server --unsafe`).
    remote_executable: str | None = None
    extra_args: tuple[str, ...] = ()
    # A browser that never starts (a hanging binary, a server that never answers) is given up after this.
    launch_timeout_ms: float = 30_000


class Driver:
    """Playwright's driver (a Node process) and the event loop, in a thread of its own, that talks to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scopematrix-engine", daemon=True)
        self.playwright: Future[Playwright] | None = None

    def start(self) -> Driver:
        if self.playwright is None:
            _node_compile_cache()
            self.thread.start()
            self.playwright = asyncio.run_coroutine_threadsafe(_start_playwright(), self.loop)
        return self


async def _start_playwright() -> Playwright:
    return await async_playwright().start()


def _node_compile_cache() -> None:
    """Node's compile cache for the driver: its start drops from about 0.5 to 0.35 s (NODE_COMPILE_CACHE,
    Node 22 and later; a cache it can't write is skipped). A value set by the user wins."""
    if "NODE_COMPILE_CACHE" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["NODE_COMPILE_CACHE"] = os.path.join(base, "scopematrix", "node-compile-cache")


_SPARE: list[Driver] = []


def prewarm() -> None:
    """Start a driver now, in the background: the next Engine of this process takes it over. `scopematrix
    run` calls this before pytest starts, so Node's start (0.3 to 0.5 s) overlaps pytest's own."""
    if not _SPARE:
        _SPARE.append(Driver().start())


class ResultsUnwritable(Exception):
    """A finished cell could not be written to the run's results file (a full disk): the run can't go on."""


class ResultSink:
    """Append-only JSON lines, flushed and fsynced per cell, so a killed run loses no finished cell."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, result: CellResult) -> None:
        line = json.dumps(result.to_dict(), sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def read_results(paths: list[Path]) -> list[CellResult]:
    """Results from JSON-lines files; the last record of a cell wins; a torn final line is skipped."""
    by_id: dict[str, CellResult] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not a scopematrix results file (not UTF-8 at byte {exc.start}).",
                             "move it out of the run folder, or rerun those cells.") from None  # fmt: skip
        for n, line in enumerate(lines, 1):
            try:
                result = CellResult.from_dict(json.loads(line))
            except ValueError as exc:
                if n == len(lines):
                    continue  # a torn final line: the cell being written when the run was killed
                raise UsageError(f"{path}:{n}: not a scopematrix result record ({validation_reason(exc)}).",
                                 "move the file out of the run folder, or rerun those cells.") from None  # fmt: skip
            by_id[result.cell_id] = result
    return list(by_id.values())


async def launch(pw: Playwright, options: BrowserOptions) -> Browser:
    if options.connect:
        args = [*CHROMIUM_ARGS, *(a for a in options.extra_args if a)]
        launch: dict[str, object] = {"headless": options.headless, "args": args}
        if options.remote_executable:
            launch["executablePath"] = options.remote_executable
        headers = {"x-playwright-launch-options": json.dumps(launch)}
        return await pw.chromium.connect(options.connect, headers=headers, timeout=options.launch_timeout_ms)
    return await pw.chromium.launch(
        executable_path=options.executable_path,
        channel=options.channel,
        headless=options.headless,
        slow_mo=options.slow_mo,
        args=[*CHROMIUM_ARGS, *(a for a in options.extra_args if a)],
        timeout=options.launch_timeout_ms,
    )


class Engine:
    def __init__(
        self,
        *,
        target: Target,
        matrix: Matrix,
        run_dir: Path,
        run_id: str,
        flow: FlowOptions,
        browser: BrowserOptions,
        concurrency: int,
        diagnose: bool,
        sink: ResultSink | None,
        logins_per_minute: float | None = None,
        on_result: Callable[[CellResult], None] | None = None,
    ) -> None:
        self.target, self.matrix, self.run_dir, self.run_id = target, matrix, run_dir, run_id
        self.flow, self.browser_options = flow, browser
        self.concurrency = max(1, concurrency)
        self.diagnose = diagnose
        self.sink = sink
        self.logins_per_minute = logins_per_minute
        self.on_result = on_result
        self._driver = _SPARE.pop() if _SPARE else Driver()
        self._loop, self._thread = self._driver.loop, self._driver.thread
        self._futures: dict[str, Future[CellResult]] = {}
        self._ready: Future[None] = Future()  # Playwright and the browser started (see start)
        self._ready.set_result(None)  # (nothing to wait for until start)
        self._lock = threading.Lock()
        self.harness: Harness | None = None
        self._sem: Slots | None = None
        self._diagnoser: Diagnoser | None = None
        self.timeline = Timeline()

    def start(self, wait: bool = True) -> Engine:
        """Start Playwright and the browser. `wait=False` returns at once, while they start: every call
        waits for them, and a start that failed raises there."""
        self._driver.start()
        self._ready = asyncio.run_coroutine_threadsafe(self._setup(), self._loop)
        if wait:
            self._ready.result()
        return self

    async def _started(self) -> Harness:
        await asyncio.wrap_future(self._ready)
        assert self.harness is not None
        return self.harness

    async def _setup(self) -> None:
        assert self._driver.playwright is not None
        pw = await asyncio.wrap_future(self._driver.playwright)
        redirect_hosts = [urlsplit(a.redirect_uri).hostname or "" for a in self.target.apps.values()]
        rules = host_rules(redirect_hosts, loopback_only=self.target.kind == "sim")
        options = dataclasses.replace(self.browser_options, extra_args=(*self.browser_options.extra_args, rules))

        async def factory() -> Browser:
            return await launch(pw, options)

        # Logins get slots of their own, as many: sharing the cells' would deadlock when a diagnosis inside a
        # cell's slot needs another user's first login.
        self.harness = Harness(
            factory, self.target, self.matrix, self.run_dir, self.flow, self.run_id, self.logins_per_minute,
            login_slots=self.concurrency,
        )  # fmt: skip
        self._sem = Slots(self.concurrency, self.harness.sessions.pool.rank)
        self._diagnoser = Diagnoser(
            self.harness, verify_installs=self.target.isolation or self.flow.approve, slots=self._sem,
            timeline=self.timeline,
        )  # fmt: skip
        self.harness.cells.on_look = self._diagnoser.probes.look  # a cell's answer is never probed again
        await self.harness.browser()

    def submit(self, cells: list[Cell]) -> None:
        with self._lock:
            for cell in cells:
                if cell.id not in self._futures:
                    self._futures[cell.id] = asyncio.run_coroutine_threadsafe(self._run(cell), self._loop)

    async def _run(self, cell: Cell, record: bool = True) -> CellResult:
        await self._started()
        assert self.harness is not None and self._sem is not None and self._diagnoser is not None
        expectation = self.matrix.expectation(cell.id)
        # Pages for the walks, made while the logins below wait on HubSpot: one for each walk that can run at
        # once, but the first (a login's own page serves it). None where no walk could take one: cells that
        # each get a context of their own (traced, recorded), and no diagnosis's probes.
        if self.diagnose or not self.flow.fresh_cells:
            self.harness.sessions.pool.stock(min(self.concurrency, len(self._futures)) - 1)
        # Log in before taking a cell's slot: a slot held while waiting for a login is a slot wasted.
        for user in dict.fromkeys(u for u in (cell.scope_set.installed_by, cell.user.id) if u):
            first = self.harness.sessions.known(user) is None  # (a login already made is not on the timeline)
            async with self.timeline.span("login", user) if first else contextlib.nullcontext():
                await self.harness.login(user)
        expected = expectation.outcome if expectation else None
        early = self.diagnose and expectation is not None and expectation.outcome.blocked
        priority = (CELL_CHAIN_FIRST if cell.scope_set.installed_by else CELL_FIRST) if early else CELL
        async with self._sem.slot(priority, cell.user.id), self.timeline.span("cell", cell.id):
            try:
                result = await self.harness.run_cell(cell, expected, expectation.reason if expectation else "")
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the cell gets a result
                result = self.harness.failed(cell, expected, exc)
        if expectation is not None and expectation.must_install:
            result = dataclasses.replace(result, must_install=True)
        if self.diagnose and result.outcome.blocked:
            # Outside the cell's slot: each probe takes a slot of its own, so diagnoses fill the free ones.
            async with self.timeline.span("diagnosis", cell.id):
                result = await self._diagnosed(cell, result)
        if record:
            result = dataclasses.replace(result, timings={**result.timings, **self.harness.take_logins()})
            if self.sink is not None:
                try:
                    self.sink.append(result)
                except OSError as exc:
                    raise ResultsUnwritable(
                        f"cell {cell.id} could not be saved to {self.sink.path} ({exc.strerror or exc}); "
                        "the cells finished before it are kept"
                    ) from None
            if self.on_result is not None:
                self.on_result(result)
        return result

    async def _diagnosed(self, cell: Cell, result: CellResult) -> CellResult:
        assert self._diagnoser is not None
        try:
            diagnosis = await self._diagnoser.diagnose(cell, result)
        except Exception as exc:  # noqa: BLE001 - a failed diagnosis must not lose the cell
            return dataclasses.replace(result, message=result.message + f" (diagnosis failed: {type(exc).__name__})")
        timings = dict(result.timings, diagnosis_probes=float(diagnosis.probes))
        return dataclasses.replace(result, diagnosis=diagnosis, timings=timings)

    def diagnosed(self, cell: Cell, result: CellResult) -> CellResult:
        """Diagnose one finished, blocked cell on request (when the engine runs with diagnose off)."""
        return asyncio.run_coroutine_threadsafe(self._diagnosed(cell, result), self._loop).result()

    def result(self, cell: Cell, timeout: float | None = None) -> CellResult:
        self.submit([cell])
        return self._futures[cell.id].result(timeout)

    def run_unrecorded(self, cell: Cell, timeout: float | None = None) -> CellResult:
        """One cell outside the run's records (a user's own test): the result, not a line in the report."""
        return asyncio.run_coroutine_threadsafe(self._run(cell, record=False), self._loop).result(timeout)

    def storage_state(self, user_id: str) -> dict[str, object] | LoginFailure:
        """The user's signed-in browser state from this run's one login (or their saved login)."""

        async def login() -> dict[str, object] | LoginFailure:
            return await (await self._started()).login(user_id)

        return asyncio.run_coroutine_threadsafe(login(), self._loop).result()

    def run_all(self, cells: list[Cell]) -> list[CellResult]:
        self.submit(cells)
        return [self.result(c) for c in cells]

    @property
    def stats(self) -> dict[str, int]:
        h = self.harness
        probes = self._diagnoser.probes.count if self._diagnoser else 0
        return {"logins": h.logins if h else 0, "probes": probes}

    def stop(self) -> None:
        async def _close() -> None:
            with contextlib.suppress(Exception):  # a start still under way ends first; a failed one left nothing
                await asyncio.wrap_future(self._ready)
            if self.harness is not None:
                await self.harness.close()
            with contextlib.suppress(OSError):  # the timeline is for the bench: never worth failing a run for
                self.timeline.write(self.run_dir)
            if self._driver.playwright is not None:  # (a prewarmed driver too, if this engine never started)
                with contextlib.suppress(Exception):
                    await (await asyncio.wrap_future(self._driver.playwright)).stop()

        if self._thread.is_alive():
            for fut in self._futures.values():
                fut.cancel()
            try:
                asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=30)
            except Exception:  # noqa: BLE001 - shutting down: nothing useful to do with it
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
