"""Find a Chromium for Playwright: Playwright's own build where installed, else the system one.

`python -m scopematrix.browser` is the set-up step: it tries `playwright install chromium`, then Debian's
chromium package (as root), and fails with one line when neither works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Flags for a closed network: without them Chromium phones home at every start (see README).
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
SYSTEM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ENV_OVERRIDE = "SCOPEMATRIX_CHROMIUM"


@dataclass(frozen=True)
class BrowserChoice:
    # None: let Playwright use its own bundled build.
    executable_path: str | None
    source: str


def _playwright_revision() -> str | None:
    try:
        import playwright

        browsers = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
        for entry in json.loads(browsers.read_text())["browsers"]:
            if entry["name"] == "chromium":
                return str(entry["revision"])
    except (OSError, KeyError, ValueError):
        return None
    return None


def playwright_chromium() -> Path | None:
    revision = _playwright_revision()
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    if revision is None or not root.is_dir():
        return None
    for candidate in root.glob(f"chromium-{revision}/chrome-linux*/chrome"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_browser() -> BrowserChoice | None:
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return BrowserChoice(override, "env") if os.access(override, os.X_OK) else None
    if playwright_chromium() is not None:
        return BrowserChoice(None, "playwright")
    for path in SYSTEM_CANDIDATES:
        if os.access(path, os.X_OK):
            return BrowserChoice(path, "system")
    return None


def _quietly(command: list[str], timeout: float) -> None:
    """Run an install step; its success is judged by find_browser() afterwards, not by its exit code."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(command, check=False, timeout=timeout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_browser() -> BrowserChoice:
    found = find_browser()
    if found is not None:
        return found
    _quietly([sys.executable, "-m", "playwright", "install", "chromium"], timeout=900)
    found = find_browser()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _quietly(["apt-get", "update", "-q"], timeout=900)
        _quietly(["apt-get", "install", "-y", "-q", "chromium"], timeout=1800)
        found = find_browser()
    if found is None:
        raise SystemExit(
            "scopematrix: no Chromium found and none could be installed. Fix: run 'playwright install chromium', "
            f"or install your distribution's chromium, or set {ENV_OVERRIDE}=/path/to/chrome."
        )
    return found


if __name__ == "__main__":
    choice = ensure_browser()
    sys.stdout.write(f"browser: {choice.source} {choice.executable_path or '(playwright bundled)'}\n")
