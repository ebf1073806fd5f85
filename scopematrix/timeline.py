"""A run's timeline: when each login, cell and diagnosis probe held a browser context, from the engine's start.

Written beside the results (`timeline-<pid>.json`) when the engine stops. The bench reads it to say where a
run waits: logins before the first cell, the concurrency bound, or idle slots (its idle fraction).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Span:
    kind: str  # login | cell | probe | diagnosis
    name: str
    start: float  # seconds since the engine started
    end: float


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.spans: list[Span] = []

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    @contextlib.asynccontextmanager
    async def span(self, kind: str, name: str) -> AsyncIterator[None]:
        start = self.now()
        try:
            yield
        finally:
            self.spans.append(Span(kind, name, start, self.now()))

    def write(self, folder: Path) -> None:
        if self.spans and folder.is_dir():
            doc = {"spans": [asdict(s) for s in self.spans]}
            (folder / f"timeline-{os.getpid()}.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")


def read_spans(folder: Path) -> list[Span]:
    spans = []
    for path in sorted(folder.glob("timeline-*.json")):
        spans += [Span(**s) for s in json.loads(path.read_text(encoding="utf-8"))["spans"]]
    return spans


def idle_fraction(spans: Sequence[Span], slots: int) -> float:
    """The share of the slots' time, from the start to the last decision, that no cell or probe used."""
    work = [s for s in spans if s.kind in ("cell", "probe")]
    if not work:
        return 0.0
    end = max(s.end for s in work)
    busy = sum(s.end - s.start for s in work)
    return round(max(0.0, 1 - busy / (slots * end)), 3)
