"""Pre-flight checks: everything that needs no browser running, checked before anything is written, for
`scopematrix run` and the pytest route alike. Bad input is one line and exit 2."""

from __future__ import annotations

import argparse
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scopematrix.errors import UsageError

if TYPE_CHECKING:
    from scopematrix.browser import BrowserChoice
    from scopematrix.matrix import Cell, Matrix


def preflight(args: argparse.Namespace, matrix: Matrix, cells: list[Cell]) -> None:
    """Every check that needs no browser, before anything is written: bad input is one line and exit 2."""
    from scopematrix.browser import check_video
    from scopematrix.target import live_target, load_env

    env = load_env(args.env_file)
    users = matrix.users_needed(cells, not args.no_diagnose)
    if args.target == "live":
        live_target(matrix, env, users, args.app_url, args.api_url, matrix.apps_needed(cells, not args.no_diagnose))
    elif not args.target_url:
        from scopematrix.simtarget import sim_target
        from scopematrix.simulator.scenario import load_scenario

        sim_target(matrix, load_scenario(args.scenario), "http://127.0.0.1", users, env)
    if args.connect:
        check_reachable(args.connect)
    else:
        if args.headed:
            check_display("scopematrix run --headed ...")
        check_browser(headless=not args.headed)
        check_video(passthrough_value(args.pytest, "--video"))


def check_display(command: str) -> None:
    """A headed browser on Linux needs an X or Wayland screen; without one Chromium dies at launch."""
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("a headed browser needs a screen, and this session has none (DISPLAY is not set).",
                         f"run it on a desktop, or under a virtual screen: xvfb-run -a {command}.")  # fmt: skip


def passthrough_value(pytest_args: list[str], flag: str) -> str | None:
    """The value of one of pytest's options among those passed through (`--flag v` or `--flag=v`)."""
    for i, arg in enumerate(pytest_args):
        if arg == flag and i + 1 < len(pytest_args):
            return pytest_args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def check_browser(headless: bool) -> BrowserChoice:
    """The browser a run would use, or one line on what to do when there is none."""
    from scopematrix.browser import ENV_OVERRIDE, find_browser

    choice = find_browser(headless=headless)
    if choice is not None:
        return choice
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        raise UsageError(f"{ENV_OVERRIDE}={override} is not an executable browser.", "unset it or point it at Chrome.")
    raise UsageError("no Chromium found.", "run 'make setup' (or python -m scopematrix.browser).")


def check_reachable(ws_url: str) -> None:
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--connect {ws_url!r} is not a ws:// URL.", "pass e.g. ws://127.0.0.1:3000/.")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise UsageError(
            f"--connect {ws_url}: nothing answers there ({exc.strerror or exc}).",
            "start 'playwright run-server' there, or correct the URL.",
        ) from None
