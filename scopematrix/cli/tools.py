"""The smaller commands: `sim` (serve the simulator), `check` (a candidate scope set) and `login` (headed)."""

from __future__ import annotations

import argparse
import signal
import time

from scopematrix.cli.common import sigterm
from scopematrix.errors import UsageError


def cmd_sim(args: argparse.Namespace) -> int:
    from scopematrix.simulator.app import create_app
    from scopematrix.simulator.scenario import load_scenario
    from scopematrix.simulator.server import SimServer
    from scopematrix.simulator.state import SimOptions

    scenario = load_scenario(args.scenario)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is out of range.", "use 0 (any free port) to 65535.")
    try:
        server = SimServer(
            create_app(scenario, SimOptions(test_support=args.test_support, latency_s=args.latency)), port=args.port
        ).start()
    except OSError as exc:
        raise UsageError(f"cannot listen on port {args.port} ({exc.strerror}).", "pick another --port.") from None
    print(f"simulator: {server.url}  (scenario {scenario.source}; Ctrl-C stops it)", flush=True)
    signal.signal(signal.SIGTERM, sigterm)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from scopematrix.check import run_check

    return run_check(args)


def cmd_login(args: argparse.Namespace) -> int:
    from scopematrix.login import save_login

    return save_login(args.user, args.out, args.matrix, args.app_url)
