"""What the commands share: where reports go, and SIGTERM taken as Ctrl-C (a run still writes its report)."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

REPORTS = Path("reports")


def sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
