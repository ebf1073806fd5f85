"""scopematrix's command line: a parser and a command table. Bad input gets one line naming the problem and
the fix, and exit 2. Each command lives in a module of its own: run.py, results.py (report, history, diff,
merge), diagnose.py, tools.py (sim, check, login); preflight.py holds the checks made before anything is
written."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from scopematrix.cli.answers import cmd_explain, cmd_troubleshoot
from scopematrix.cli.diagnose import cmd_diagnose
from scopematrix.cli.parser import build_parser
from scopematrix.cli.results import cmd_diff, cmd_history, cmd_merge, cmd_report
from scopematrix.cli.run import cmd_run
from scopematrix.cli.tools import cmd_check, cmd_login, cmd_sim
from scopematrix.errors import UsageError
from scopematrix.runs import EXIT_USAGE

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "report": cmd_report, "sim": cmd_sim, "history": cmd_history, "diff": cmd_diff,
    "merge": cmd_merge, "diagnose": cmd_diagnose, "login": cmd_login, "check": cmd_check,
    "explain": cmd_explain, "troubleshoot": cmd_troubleshoot,
}  # fmt: skip


# pytest's own options that `scopematrix run` passes through (selection, stopping, verbosity, artifacts).
PYTEST_FLAGS = {"-x", "--exitfirst", "--lf", "--last-failed", "--ff", "--failed-first", "--sw", "--stepwise",
                "-v", "-vv", "--verbose", "--co", "--collect-only", "--full-page-screenshot"}  # fmt: skip
PYTEST_VALUED = {"-k", "-m", "--maxfail", "--screenshot", "--video", "--browser-channel"}
CHOICES = {"--screenshot": ("on", "off", "only-on-failure"), "--video": ("on", "off", "retain-on-failure")}


def _check_value(name: str, value: str) -> None:
    """A pass-through value pytest would refuse is refused here, before a run folder exists (exit 2)."""
    if name in ("-k", "-m"):
        from _pytest.mark.expression import Expression

        try:
            Expression.compile(value)
        except SyntaxError as exc:
            raise UsageError(f"{name} {value!r} is not a pytest expression ({exc.msg}).",
                             "fix the expression, e.g. -k 'sales-admin and enterprise'.") from None  # fmt: skip
    elif name == "--maxfail" and not (value.isascii() and value.isdigit()):
        raise UsageError(f"--maxfail {value!r} is not a number.", "pass a whole number, e.g. --maxfail 3.")
    elif name in CHOICES and value not in CHOICES[name]:
        raise UsageError(f"{name} {value!r} is not one of {', '.join(CHOICES[name])}.", f"pass one of those to {name}.")


def _pytest_passthrough(extra: list[str]) -> list[str]:
    out, rest = [], list(extra)
    while rest:
        arg = rest.pop(0)
        name = arg.split("=", 1)[0]
        if name in PYTEST_FLAGS:
            out.append(arg)
        elif name in PYTEST_VALUED:
            if "=" in arg:
                _check_value(name, arg.split("=", 1)[1])
                out.append(arg)
            elif rest:
                _check_value(name, rest[0])
                out += [arg, rest.pop(0)]
            else:
                raise UsageError(f"{arg} needs a value.", "see 'scopematrix run --help' and 'pytest --help'.")
        else:
            raise UsageError(f"unrecognized argument {arg!r}.", "see 'scopematrix run --help'.")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra and args.command != "run":
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}.", f"see 'scopematrix {args.command} --help'.")
        args.pytest = _pytest_passthrough(extra)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scopematrix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def entry() -> int:
    """The `scopematrix` program: `main`, then the heap is left to the operating system. Every atexit handler
    still runs; only the interpreter's last collection of a run's heap is skipped (0.13 s of every run)."""
    code = main()
    gc.freeze()
    return code
