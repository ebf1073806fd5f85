"""What a walk is asked to do and what it found: the flow's records and the pure helpers around them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from scopematrix.matrix import Cell
from scopematrix.model import Capture, Outcome
from scopematrix.pages.errors import ErrorCause
from scopematrix.target import Target

StorageState = dict[str, Any]


@dataclass(frozen=True)
class FlowOptions:
    approve: bool = False
    grace_s: float = 3.0
    timeout_ms: float = 15_000
    retries: int = 1
    tracing: str = "off"  # on | off | retain-on-failure
    video: str = "off"  # on | off | retain-on-failure
    pinned: bool = True
    max_steps: int = 12
    # A private folder where the processes of one run share their users' logins (None: this process only).
    shared_logins: Path | None = None

    @property
    def fresh_cells(self) -> bool:
        """Whether every cell's walk gets a context of its own (traced or recorded from its first request)."""
        return self.tracing != "off" or self.video != "off"


@dataclass
class Walk:
    """What one pass through the hosted screens showed."""

    outcome: Outcome
    heading: str = ""
    message: str = ""
    missing_permissions: tuple[str, ...] = ()
    offered: tuple[str, ...] | None = None  # None: the consent page's scope list could not be read
    granted: tuple[str, ...] | None = None
    captures: list[Capture] = field(default_factory=list)
    error: str = ""
    html_path: str = ""
    needs_login: bool = False
    navigations: int = 0  # main-frame document requests, redirects included
    # A known screen whose control our page object can't use (UI drift): another attempt would meet it again.
    drift: bool = False


@dataclass(frozen=True)
class WalkPlan:
    """One pass through the hosted flow: who, where, which scopes, and what to do at consent."""

    user_id: str
    hub_id: int
    scopes: tuple[str, ...]
    optional: tuple[str, ...] = ()
    namespace: str | None = None
    approve: bool = False
    folder: Path | None = None  # where screenshots go; None for probes, which keep no evidence
    tracing: bool = False
    video: bool = False
    app: str = ""  # the matrix's app id; "" is the main app
    client_id: str | None = None  # deliberate misconfigurations of a scope set
    redirect_uri: str | None = None
    account_name: str = ""  # picks the account in the picker when a row shows no Hub ID
    # After "Connect app": exchange the code and read the granted scopes. A precondition install needs
    # only HubSpot's approval (the redirect with the state it sent), not tokens.
    exchange: bool = True
    # A diagnosis walk: only its outcome is kept, so only what decides the outcome is read (no message, no
    # missing permissions, no scope list unless optional scopes make it partial). Cells read everything.
    outcome_only: bool = False

    @classmethod
    def for_cell(cls, cell: Cell, user_id: str | None = None, **options: Any) -> WalkPlan:
        s = cell.scope_set
        options.setdefault("app", s.app or "")
        return cls(user_id or cell.user.id, cell.account.hub_id, tuple(s.scopes), tuple(s.optional),
                   client_id=s.client_id, redirect_uri=s.redirect_uri, account_name=cell.account.name,
                   **options)  # fmt: skip


@dataclass(frozen=True)
class LoginFailure:
    """A login that did not end signed in. LOGIN_FAILED only on HubSpot's own words (a wrong password,
    "This doesn't look right", a deactivated user); an outage, a foreign origin or a bounce loop is ERROR,
    a login screen no page object knows UNRECOGNIZED."""

    message: str
    captures: tuple[Capture, ...]
    outcome: Outcome = Outcome.LOGIN_FAILED
    html_path: str = ""

    def as_walk(self) -> Walk:
        error = self.message if self.outcome is Outcome.ERROR else ""
        return Walk(self.outcome, heading="Login", message=self.message, captures=list(self.captures), error=error,
                    html_path=self.html_path)  # fmt: skip


def classify_error(cause: ErrorCause) -> Outcome:
    if cause is ErrorCause.ACCOUNT_LACKS_FEATURES:
        return Outcome.DENIED_ACCOUNT
    if cause is ErrorCause.NOT_APPROVED:
        return Outcome.NEEDS_APPROVAL
    if cause is ErrorCause.UNKNOWN:
        return Outcome.UNRECOGNIZED
    return Outcome.APP_MISCONFIGURED


def consent_outcome(offered: tuple[str, ...] | None, optional: tuple[str, ...]) -> Outcome:
    """Partial only on evidence: a scope list that was read (or the token's scopes) lacks an optional scope."""
    if offered is None:
        return Outcome.GRANTED
    return Outcome.GRANTED_PARTIAL if any(s not in offered for s in optional) else Outcome.GRANTED


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "--", text)


def authorize_url(target: Target, plan: WalkPlan, pinned: bool, state: str) -> str:
    app = target.apps[plan.app or target.main_app]
    path = f"/oauth/{plan.hub_id}/authorize" if pinned else "/oauth/authorize"
    scopes, optional = plan.scopes, plan.optional
    params = {
        "client_id": plan.client_id or app.client_id,
        "redirect_uri": plan.redirect_uri or app.redirect_uri,
        "scope": " ".join(scopes),
    }
    if optional:
        params["optional_scope"] = " ".join(optional)
    params["state"] = state
    return target.app_url + path + "?" + urlencode(params).replace("+", "%20")


def attempt_folder(run_dir: Path, cell_id: str, attempt: int) -> Path:
    """Where a cell's attempt keeps its evidence: screenshots, trace.zip, video.webm."""
    return run_dir / "cells" / slug(cell_id) / f"attempt-{attempt}"


def flag_decisive(captures: list[Capture]) -> tuple[Capture, ...]:
    """The last screen passed is where the outcome was decided."""
    if not captures:
        return ()
    return (*captures[:-1], dataclasses.replace(captures[-1], decisive=True))
