"""Errors a user can fix. The CLI prints them as one line and exits 2; never a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad config, CLI value or environment. `str()` names the problem and the fix on one line."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} Fix: {fix}")
        self.problem = problem
        self.fix = fix


class InfrastructureError(Exception):
    """The target or the browser could not be used at all (not a HubSpot decision)."""
