"""Find a Chromium for Playwright: Playwright's own build where installed, else the system one.

Headless runs prefer the light headless shell (what Playwright itself uses headless; about a third of the
full browser's CPU here), headed runs need the full browser. `python -m scopematrix.browser` is the set-up
step: it tries `playwright install chromium chromium-headless-shell`, then Debian's `chromium` and
`chromium-headless-shell` packages (as root), and fails with one line when neither works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scopematrix.errors import UsageError

# Flags for a closed network: without them Chromium phones home at every start (see README).
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
SYSTEM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
SYSTEM_HEADLESS_SHELLS = ("/usr/bin/chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell")
ENV_OVERRIDE = "SCOPEMATRIX_CHROMIUM"


@dataclass(frozen=True)
class BrowserChoice:
    # None: let Playwright use its own bundled build.
    executable_path: str | None
    source: str


def _playwright_revision(name: str = "chromium") -> str | None:
    try:
        import playwright

        browsers = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
        for entry in json.loads(browsers.read_text())["browsers"]:
            if entry["name"] == name:
                return str(entry["revision"])
    except (OSError, KeyError, ValueError):
        return None
    return None


def _browsers_root() -> Path:
    return Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")


def _playwright_build(name: str, folder: str, binary: str) -> Path | None:
    revision = _playwright_revision(name)
    root = _browsers_root()
    if revision is None or not root.is_dir():
        return None
    for candidate in root.glob(f"{folder}-{revision}/*/{binary}"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def playwright_chromium() -> Path | None:
    return _playwright_build("chromium", "chromium", "chrome")


def playwright_headless_shell() -> Path | None:
    return _playwright_build("chromium-headless-shell", "chromium_headless_shell", "*headless_shell")


def playwright_ffmpeg() -> Path | None:
    """Playwright's own ffmpeg build, which records videos (`playwright install ffmpeg`)."""
    revision = _playwright_revision("ffmpeg")
    found = sorted(_browsers_root().glob(f"ffmpeg-{revision}/ffmpeg-*")) if revision else []
    return next((f for f in found if os.access(f, os.X_OK)), None)


def check_video(mode: str | None) -> None:
    """--video needs Playwright's ffmpeg: without it every context would fail to open, so refuse up front."""
    if mode and mode != "off" and playwright_ffmpeg() is None:
        raise UsageError(
            f"--video {mode} needs Playwright's ffmpeg, which is not installed.",
            "run 'playwright install ffmpeg', or drop --video (--tracing on records every screen too).",
        )


def find_browser(headless: bool = False) -> BrowserChoice | None:
    """The browser to launch; with `headless`, the headless shell where there is one."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return BrowserChoice(override, "env") if os.access(override, os.X_OK) else None
    if headless:
        shell = playwright_headless_shell()
        if shell is not None:
            return BrowserChoice(str(shell), "playwright headless shell")
        for path in SYSTEM_HEADLESS_SHELLS:
            if os.access(path, os.X_OK):
                return BrowserChoice(path, "system headless shell")
    if playwright_chromium() is not None:
        return BrowserChoice(None, "playwright")
    for path in SYSTEM_CANDIDATES:
        if os.access(path, os.X_OK):
            return BrowserChoice(path, "system")
    return None


def host_rules(redirect_hosts: Iterable[str], loopback_only: bool) -> str:
    """--host-resolver-rules: the app's redirect hosts never resolve (the code stays in the browser), and
    against the simulator nothing but loopback does."""
    rules = [f"MAP {h} ~NOTFOUND" for h in sorted(set(redirect_hosts)) if h not in LOOPBACK]
    if loopback_only:
        rules = ["MAP * ~NOTFOUND", *(f"EXCLUDE {h}" for h in LOOPBACK)]
    return "--host-resolver-rules=" + ", ".join(rules) if rules else ""


LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def _quietly(command: list[str], timeout: float) -> None:
    """Run an install step; its success is judged by find_browser() afterwards, not by its exit code."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(command, check=False, timeout=timeout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _complete(headed: BrowserChoice | None, headless: BrowserChoice | None) -> bool:
    return headed is not None and headless is not None and headless.source != headed.source


def ensure_browser() -> tuple[BrowserChoice, BrowserChoice]:
    """(the headed browser, the headless one), installing what is missing."""
    if os.environ.get(ENV_OVERRIDE) or _complete(find_browser(), find_browser(headless=True)):
        found = find_browser()
        if found is not None:
            return found, find_browser(headless=True) or found
    _quietly([sys.executable, "-m", "playwright", "install", "chromium", "chromium-headless-shell"], timeout=900)
    if not _complete(find_browser(), find_browser(headless=True)) and os.geteuid() == 0 and shutil.which("apt-get"):
        _quietly(["apt-get", "update", "-q"], timeout=900)
        _quietly(["apt-get", "install", "-y", "-q", "chromium", "chromium-headless-shell"], timeout=1800)
    found = find_browser()
    if found is None:
        raise SystemExit(
            "scopematrix: no Chromium found and none could be installed. Fix: run 'playwright install chromium', "
            f"or install your distribution's chromium, or set {ENV_OVERRIDE}=/path/to/chrome."
        )
    return found, find_browser(headless=True) or found


def ensure_virtual_display() -> str | None:
    """xvfb-run, for --headed runs on a machine without a screen (CI); installed with apt where possible."""
    if shutil.which("xvfb-run") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _quietly(["apt-get", "update", "-q"], timeout=900)
        _quietly(["apt-get", "install", "-y", "-q", "--no-install-recommends", "xvfb", "xauth"], timeout=900)
    return shutil.which("xvfb-run")


if __name__ == "__main__":
    display = ensure_virtual_display()
    sys.stdout.write(f"virtual display for --headed: {display or 'none (headed runs need a screen)'}\n")
    for kind, choice in zip(("headed", "headless"), ensure_browser(), strict=True):
        sys.stdout.write(f"browser ({kind}): {choice.source} {choice.executable_path or '(playwright bundled)'}\n")
