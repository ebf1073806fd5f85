"""`scopematrix diagnose`: one user × account × scope set, run and diagnosed on its own."""

from __future__ import annotations

import argparse

from scopematrix.errors import UsageError


def cmd_diagnose(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from scopematrix.browser import find_browser
    from scopematrix.engine import BrowserOptions, Engine
    from scopematrix.flow import FlowOptions
    from scopematrix.matrix import Cell, ScopeSetEntry, load_matrix
    from scopematrix.runs import new_run_id
    from scopematrix.target import live_target, load_env

    matrix = load_matrix(args.matrix)
    user = next((u for u in matrix.spec.users if u.id == args.user), None)
    account = next((a for a in matrix.spec.accounts if a.id == args.account), None)
    if user is None or account is None:
        what = f"user '{args.user}'" if user is None else f"account '{args.account}'"
        raise UsageError(f"unknown {what}.", f"use an id from {matrix.source}.")
    if args.app is not None and args.app not in {a.id for a in matrix.spec.apps}:
        raise UsageError(f"unknown app '{args.app}'.", f"use one of: {', '.join(a.id for a in matrix.spec.apps)}.")
    try:
        scope_set = ScopeSetEntry(id="adhoc", app=args.app, scopes=args.scopes.split(), optional=args.optional.split())
    except ValidationError as exc:
        msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        problem, _, fix = msg.partition(" Fix: ")
        raise UsageError(f"--scopes: {problem}.", fix or "correct the scope names.") from None
    cell = Cell(user, account, scope_set)
    env = load_env(args.env_file)
    users = matrix.users_needed([cell])
    server = None
    if args.target == "live":
        target = live_target(matrix, env, users, args.app_url, args.api_url, matrix.apps_needed([cell]))
    else:
        from scopematrix.simtarget import sim_target, start_simulator

        server, scenario = start_simulator(args.scenario)
        target = sim_target(matrix, scenario, server.url, users, env)
    choice = find_browser(headless=True)
    run_dir = args.reports / ("diagnose-" + new_run_id())
    engine = Engine(
        target=target, matrix=matrix, run_dir=run_dir, run_id=run_dir.name, flow=FlowOptions(),
        browser=BrowserOptions(executable_path=choice.executable_path if choice else None), concurrency=2,
        diagnose=True, sink=None,
    )  # fmt: skip
    try:
        engine.start()
        result = engine.result(cell)
    finally:
        engine.stop()
        if server is not None:
            server.stop()
    print(f"{cell.id}: {result.outcome.value} ({result.heading})")
    d = result.diagnosis
    if d is None:
        print("no diagnosis: the cell is not blocked")
        return 0
    print(d.summary)
    print(f"blocking scopes: {', '.join(d.blocking_scopes) or '(none: installer-level)'}; probes: {d.probes}")
    for f in d.findings:
        print(f"  {f.scope}: {f.level}-level {('- ' + f.hint) if f.hint else ''}")
    for r in d.remedies:
        state = {True: "verified", False: "does not work", None: "not probed"}[r.verified]
        print(f"  fix ({r.kind}, {state}): {r.summary}")
    return 0
