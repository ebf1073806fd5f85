"""`scopematrix check`: run a candidate scope set next to the current one for every user x account,
and say which combinations would newly fail, with their diagnosis."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from scopematrix.browser import find_browser
from scopematrix.engine import BrowserOptions, Engine, ResultSink
from scopematrix.errors import UsageError
from scopematrix.flow import FlowOptions
from scopematrix.matrix import Cell, Matrix, ScopeSetEntry, load_matrix
from scopematrix.model import CellResult
from scopematrix.report.build import RunMeta, write_report
from scopematrix.runs import EXIT_INFRA, EXIT_OK, EXIT_REGRESSION, new_run_id, versions
from scopematrix.target import live_target, load_env

CANDIDATE = "candidate"


@dataclass(frozen=True)
class Change:
    base: CellResult
    candidate: CellResult
    must_install: bool

    @property
    def newly_fails(self) -> bool:
        return self.base.outcome.installs and not self.candidate.outcome.installs


def candidate_set(matrix: Matrix, args: argparse.Namespace) -> tuple[ScopeSetEntry, ScopeSetEntry]:
    sets = {s.id: s for s in matrix.spec.scope_sets}
    base_id = args.base or matrix.spec.scope_sets[0].id
    if base_id not in sets:
        raise UsageError(f"--base: no scope set '{base_id}'.", f"use one of: {', '.join(sets)}.")
    base = sets[base_id]
    if args.scopes is None and not args.add and not args.optional:
        raise UsageError("nothing to check.", 'pass --add "scope ..." , --optional "scope ...", or --scopes "...".')
    scopes = args.scopes.split() if args.scopes is not None else [*base.scopes, *args.add.split()]
    optional = [*base.optional, *args.optional.split()]
    try:
        cand = ScopeSetEntry(
            id=CANDIDATE, app=base.app, scopes=list(dict.fromkeys(scopes)), optional=list(dict.fromkeys(optional))
        )
    except ValidationError as exc:
        msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        problem, _, fix = msg.partition(" Fix: ")
        raise UsageError(f"candidate scopes: {problem}.", fix or "correct the scope names.") from None
    return base, cand


def run_check(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    base, cand = candidate_set(matrix, args)
    pairs = [(u, matrix.account(a)) for u in matrix.spec.users for a in u.accounts]
    cells = [Cell(u, a, s) for u, a in pairs for s in (base, cand)]
    env = load_env(args.env_file)
    users = matrix.users_needed(cells)
    server = None
    if args.target == "live":
        target = live_target(matrix, env, users, args.app_url, args.api_url, matrix.apps_needed(cells))
    else:
        from scopematrix.simtarget import sim_target, start_simulator, with_candidate_scopes
        from scopematrix.simulator.scenario import load_scenario

        added = [s for s in cand.scopes if s not in base.scopes]
        extra_optional = [s for s in cand.optional if s not in base.optional]
        scenario = with_candidate_scopes(
            load_scenario(args.scenario), matrix.app_of(base).client_id or "", added, extra_optional
        )
        server, scenario = start_simulator(None, scenario=scenario)
        target = sim_target(matrix, scenario, server.url, users, env)
    run_dir = args.reports / ("check-" + new_run_id().removeprefix("run-"))
    choice = find_browser(headless=True)
    started = datetime.now(UTC)
    engine = Engine(
        target=target, matrix=matrix, run_dir=run_dir, run_id=run_dir.name, flow=FlowOptions(),
        browser=BrowserOptions(executable_path=choice.executable_path if choice else None),
        concurrency=args.concurrency, diagnose=False, sink=ResultSink(run_dir / "results-main.jsonl"),
    )  # fmt: skip
    try:
        engine.start()
        results = engine.run_all(cells)
        base_ok = {r.cell_id.replace(f"/{base.id}", f"/{CANDIDATE}") for r in results if r.outcome.installs}
        # Only what newly fails needs explaining; diagnosing the rest would cost probes for nothing.
        by_cell = {c.id: c for c in cells}
        results = [
            engine.diagnosed(by_cell[r.cell_id], r) if r.cell_id in base_ok and r.outcome.blocked else r
            for r in results
        ]
    finally:
        engine.stop()
        if server is not None:
            server.stop()
    by_id = {r.cell_id: r for r in results}
    changes = []
    for user, account in pairs:
        expectation = matrix.expectation(f"{user.id}@{account.id}/{base.id}")
        changes.append(
            Change(
                by_id[f"{user.id}@{account.id}/{base.id}"],
                by_id[f"{user.id}@{account.id}/{CANDIDATE}"],
                bool(expectation and expectation.must_install),
            )
        )
    meta = RunMeta(
        run_id=run_dir.name, target=args.target, target_url=target.app_url, app=matrix.app.name,
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round((datetime.now(UTC) - started).total_seconds(), 2), versions=versions(),
        planned_cells=len(cells), command="scopematrix check",
    )  # fmt: skip
    write_report(run_dir, results, meta)
    print(
        f"candidate: scope={' '.join(cand.scopes)}" + (f" optional={' '.join(cand.optional)}" if cand.optional else "")
    )
    print(f"compared with '{base.id}' for {len(pairs)} user x account combinations")
    broken = [c for c in changes if c.newly_fails]
    for c in broken:
        flag = " [must install]" if c.must_install else ""
        why = c.candidate.diagnosis.summary if c.candidate.diagnosis else c.candidate.message
        print(
            f"  NEWLY FAILS{flag}: {c.base.user}@{c.base.account}: {c.base.outcome.value} -> "
            f"{c.candidate.outcome.value}: {why}"
        )
    fixed = [c for c in changes if c.candidate.outcome.installs and not c.base.outcome.installs]
    for c in fixed:
        print(f"  newly installs: {c.base.user}@{c.base.account}")
    print(f"{len(broken)} combination(s) would newly fail; report: {run_dir / 'index.html'}")
    if any(c.must_install for c in broken):
        return EXIT_REGRESSION
    if any(r.outcome.infrastructure for r in results):
        return EXIT_INFRA
    return EXIT_OK
