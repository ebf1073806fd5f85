"""The command line's grammar: every command, its options and their types. Bad input is a UsageError."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any, NoReturn

from scopematrix.cli.common import REPORTS
from scopematrix.errors import UsageError
from scopematrix.slots import default_concurrency


class _Parser(argparse.ArgumentParser):
    """No abbreviations: `--co` must reach pytest whole, not be taken for --concurrency or --connect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}.", f"see '{self.prog} --help'.")


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number of at least 1")
    return int(value)


def _shard(value: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", value)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"'{value}' is not a shard like 1/3")
    return int(m.group(1)), int(m.group(2))


def _non_negative(value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not math.isfinite(out):
        raise argparse.ArgumentTypeError(f"'{value}' is not a finite number")
    if out < 0:
        raise argparse.ArgumentTypeError(f"'{value}' is negative")
    return out


def _positive(value: str) -> float:
    out = _non_negative(value)
    if out == 0:
        raise argparse.ArgumentTypeError(f"'{value}' must be more than 0")
    return out


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matrix", type=Path, help="matrix YAML (default fixtures/matrix.yaml)")
    p.add_argument("--scenario", type=Path, help="simulator scenario YAML (default fixtures/scenario.yaml)")
    p.add_argument("--target", choices=["sim", "live"], default="sim")
    p.add_argument("--app-url", help="HubSpot app URL for --target live (default https://app.hubspot.com)")
    p.add_argument("--api-url", help="HubSpot API URL for --target live (default https://api.hubapi.com)")
    p.add_argument("--env-file", type=Path, help="dotenv file with credentials (default .env if present)")
    p.add_argument("--user", action="append", default=[], help="only these users (glob; repeatable)")
    p.add_argument("--account", action="append", default=[], help="only these accounts (glob; repeatable)")
    p.add_argument("--scope-set", action="append", default=[], help="only these scope sets (glob; repeatable)")


def _role(value: str) -> str:
    from scopematrix.answers.profile import ROLES

    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in ROLES:
        raise argparse.ArgumentTypeError(f"'{value}' is not one of {', '.join(k.replace('_', '-') for k in ROLES)}")
    return key


def _products(value: str) -> dict[str, str]:
    from scopematrix.answers.profile import HUBS, TIERS, parse_products

    try:
        return parse_products(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{exc}' is not hub:tier (hubs: {', '.join(HUBS)}; tiers: {', '.join(TIERS)}), e.g. marketing:professional"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scopematrix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the matrix and write the report")
    _add_selection(run)
    run.add_argument("-n", "--workers", type=_positive_int, default=1, help="pytest-xdist worker processes")
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        default=default_concurrency(),
        help="browser contexts in flight per worker (default: 5 per core, at most 10)",
    )
    run.add_argument("--approve", action="store_true", help="click through consent, exchange the code, revoke")
    run.add_argument("--no-diagnose", action="store_true", help="skip diagnosis of blocked cells")
    run.add_argument("--baseline", type=Path, help="expectations file (default: the matrix's baseline)")
    run.add_argument(
        "--update-baseline",
        action="store_true",
        help="set the expectations of the cells this run decided; keep every other one",
    )
    run.add_argument("--prune", action="store_true", help="with --update-baseline: remove stale expectations")
    run.add_argument("--strict", action="store_true", help="fail on stale baseline entries")
    run.add_argument("--shard", type=_shard, help="run shard i of N, e.g. 1/3")
    run.add_argument("--resume", metavar="RUN_ID", help="finish an interrupted run: only its missing cells")
    run.add_argument("--connect", metavar="WS_URL", help="use a remote Playwright browser server")
    run.add_argument("--remote-executable", metavar="PATH", help="browser binary on the server (run-server --unsafe)")
    run.add_argument("--headed", action="store_true")
    run.add_argument("--slowmo", type=_non_negative, default=0.0, help="milliseconds between actions")
    run.add_argument("--tracing", choices=["on", "off", "retain-on-failure"], default="off")
    run.add_argument("--timeout", type=_positive, help="per-action timeout in seconds")
    run.add_argument("--grace", type=_positive, help="seconds a screen may take to become recognisable")
    run.add_argument("--retries", type=int, default=1, choices=[0, 1, 2])
    run.add_argument("--latency", type=_non_negative, default=0.0, help="simulator: per-response latency in seconds")
    run.add_argument("--target-url", help="simulator: use one already running at this URL")
    run.add_argument("--reports", type=Path, default=REPORTS, help="reports folder (default reports/)")
    run.add_argument("--quiet", action="store_true")

    rep = sub.add_parser("report", help="rebuild a report from results.json or a run folder")
    rep.add_argument("source", type=Path)

    sim = sub.add_parser("sim", help="serve the embedded simulator")
    sim.add_argument("--scenario", type=Path)
    sim.add_argument("--port", type=int, default=0)
    sim.add_argument("--test-support", action="store_true", help="enable /__sim reset and fault switches")
    sim.add_argument("--latency", type=_non_negative, default=0.0)

    hist = sub.add_parser("history", help="list recorded runs")
    hist.add_argument("--reports", type=Path, default=REPORTS)

    diff = sub.add_parser("diff", help="cells whose outcome differs between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--reports", type=Path, default=REPORTS)

    merge = sub.add_parser("merge", help="merge shard run folders into one report")
    merge.add_argument("runs", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, help="merged run folder (default reports/<new run id>)")
    merge.add_argument("--matrix", type=Path, help="the matrix the shards ran (for stale expectations)")
    merge.add_argument("--strict", action="store_true", help="fail on stale baseline entries")
    merge.add_argument(
        "--all-cells",
        action="store_true",
        help="the shards together ran the whole matrix: any matrix cell without a result is missing",
    )

    exp = sub.add_parser("explain", help="answer a customer's 'why can't I connect?' from a run's results")
    exp.add_argument(
        "--role",
        required=True,
        type=_role,
        help="super-admin, admin-marketplace, admin (no App Marketplace Access), restricted, deactivated",
    )
    exp.add_argument(
        "--products",
        required=True,
        type=_products,
        help="the account's paid hubs, e.g. 'marketing:professional,sales:starter', or 'free'",
    )
    exp.add_argument("--app", default="", help="only this app (its name)")
    exp.add_argument("--scope-set", default="", help="only this install option (scope set id or description)")
    exp.add_argument("--says", default="", help="the text HubSpot showed the customer")
    exp.add_argument("--run", help="a run id or folder (default: the latest run)")
    exp.add_argument("--reports", type=Path, default=REPORTS)
    exp.add_argument("--json", action="store_true", help="the answer as JSON")

    ts = sub.add_parser("troubleshoot", help="write the customer-facing troubleshooting page of a run")
    ts.add_argument("run", nargs="?", help="a run id or folder (default: the latest run)")
    ts.add_argument("--out", type=Path, help="folder for troubleshooting.html and .md (default: the run folder)")
    ts.add_argument("--reports", type=Path, default=REPORTS)

    diag = sub.add_parser("diagnose", help="diagnose one user x account x scope set")
    diag.add_argument("--user", required=True)
    diag.add_argument("--account", required=True)
    diag.add_argument("--scopes", required=True, help='space-separated, e.g. "forms content"')
    diag.add_argument("--optional", default="", help="space-separated optional scopes")
    diag.add_argument("--app", help="the app whose install URL to diagnose (default: the matrix's first)")
    for path_option in ("--matrix", "--scenario", "--env-file"):
        diag.add_argument(path_option, type=Path)
    diag.add_argument("--app-url")
    diag.add_argument("--api-url")
    diag.add_argument("--target", choices=["sim", "live"], default="sim")
    diag.add_argument("--reports", type=Path, default=REPORTS)

    check = sub.add_parser("check", help="before shipping a new scope: who could no longer install the app")
    check.add_argument("--add", default="", help='scopes to add to the install URL, e.g. "crm.objects.deals.write"')
    check.add_argument("--optional", default="", help="scopes to add as optional_scope")
    check.add_argument("--scopes", help="a whole candidate scope set instead of --add (space-separated)")
    check.add_argument("--base", help="the current scope set to compare with (default: the matrix's first)")
    check.add_argument("--target", choices=["sim", "live"], default="sim")
    check.add_argument("--concurrency", type=_positive_int, default=default_concurrency())
    check.add_argument("--reports", type=Path, default=REPORTS)
    for path_option in ("--matrix", "--scenario", "--env-file"):
        check.add_argument(path_option, type=Path)
    check.add_argument("--app-url")
    check.add_argument("--api-url")

    login = sub.add_parser("login", help="log a user in with a headed browser and save the login state")
    login.add_argument("--user", required=True)
    login.add_argument("--out", type=Path, help="where to save it (default .auth/<user>.json)")
    login.add_argument("--matrix", type=Path)
    login.add_argument("--app-url")
    return parser
