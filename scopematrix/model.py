"""The harness's typed records: outcomes, screens, captures, diagnoses and cell results.

Everything that crosses a module boundary is one of these; results.json is their serialised form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

RESULTS_SCHEMA_VERSION = 1


class Outcome(StrEnum):
    """What HubSpot decided for a cell, ordered from best to worst for the report."""

    GRANTED = "granted"
    GRANTED_PARTIAL = "granted_partial"
    NEEDS_APPROVAL = "needs_approval"
    DENIED_PERMISSIONS = "denied_permissions"
    DENIED_ACCOUNT = "denied_account"
    APP_MISCONFIGURED = "app_misconfigured"
    LOGIN_FAILED = "login_failed"
    UNRECOGNIZED = "unrecognized"
    ERROR = "error"

    @property
    def installs(self) -> bool:
        return self in (Outcome.GRANTED, Outcome.GRANTED_PARTIAL)

    @property
    def blocked(self) -> bool:
        """A HubSpot denial that diagnosis can explain."""
        return self in (Outcome.DENIED_ACCOUNT, Outcome.DENIED_PERMISSIONS, Outcome.NEEDS_APPROVAL)

    @property
    def infrastructure(self) -> bool:
        """Not a HubSpot decision: retried, and never counted as a regression."""
        return self in (Outcome.ERROR, Outcome.UNRECOGNIZED)

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Outcome.GRANTED: "Installs",
    Outcome.GRANTED_PARTIAL: "Installs, partial",
    Outcome.NEEDS_APPROVAL: "Needs approval",
    Outcome.DENIED_PERMISSIONS: "Denied: user",
    Outcome.DENIED_ACCOUNT: "Denied: account",
    Outcome.APP_MISCONFIGURED: "App misconfigured",
    Outcome.LOGIN_FAILED: "Login failed",
    Outcome.UNRECOGNIZED: "Unknown screen",
    Outcome.ERROR: "Error",
}


class Screen(StrEnum):
    LOGIN_EMAIL = "login_email"
    LOGIN_PASSWORD = "login_password"
    LOGIN_2FA = "login_2fa"
    LOGIN_REMEMBER = "login_remember"
    ACCOUNT_PICKER = "account_picker"
    CONSENT = "consent"
    CONNECTION_ERROR = "connection_error"
    PERMISSION_DENIED = "permission_denied"
    NEEDS_APPROVAL = "needs_approval"
    CANCELLED = "cancelled"
    REDIRECT = "redirect"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Capture:
    """A screenshot of one screen passed; `path` is relative to the run folder."""

    screen: Screen
    path: str
    decisive: bool = False


@dataclass(frozen=True)
class Remedy:
    kind: str  # optional_scope | super_admin_first | grant_permissions | upgrade_account
    summary: str
    verified: bool | None  # None: not probed (e.g. would change live state)
    outcome: Outcome | None = None
    missing_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScopeFinding:
    scope: str
    level: str  # account | user | unknown
    hint: str = ""


@dataclass(frozen=True)
class Diagnosis:
    blocking_scopes: tuple[str, ...]
    attribution: str  # account | user | installer | mixed | unknown
    findings: tuple[ScopeFinding, ...] = ()
    missing_permissions: tuple[str, ...] = ()
    remedies: tuple[Remedy, ...] = ()
    probes: int = 0
    method: str = "binary-splitting"
    summary: str = ""
    search_probes: int = 0  # probes spent finding blocking_scopes (others: base probe, attribution, fixes)
    # When the probes could not isolate the blocker: the scopes it is among (blocking_scopes stays empty).
    candidates: tuple[str, ...] = ()
    probe_app: str = ""  # the app the probes used ("" for the cell's own app)


@dataclass(frozen=True)
class CellResult:
    cell_id: str
    user: str
    role: str
    account: str
    hub_id: int
    scope_set: str
    requested_scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]
    outcome: Outcome
    heading: str = ""
    message: str = ""
    missing_permissions: tuple[str, ...] = ()
    offered_scopes: tuple[str, ...] | None = None  # None: consent's scope list could not be read
    granted_scopes: tuple[str, ...] | None = None
    screenshots: tuple[Capture, ...] = ()
    expected: Outcome | None = None
    expectation_reason: str = ""
    must_install: bool = False  # the baseline marks this cell as one that must keep installing
    attempts: int = 1
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    authorize_url: str = ""
    error: str = ""
    html_path: str = ""
    trace_path: str = ""
    diagnosis: Diagnosis | None = None
    installed_by: str | None = None
    finished_at: str = ""

    @property
    def matches_expectation(self) -> bool:
        """An outage or an unknown screen decided nothing: it never matches, whatever a baseline expects."""
        if self.outcome.infrastructure:
            return False
        return self.expected is None or self.expected is self.outcome

    @property
    def regression(self) -> bool:
        """HubSpot decided, and not as expected (infrastructure trouble never counts)."""
        return not self.matches_expectation and not self.outcome.infrastructure

    @property
    def decisive(self) -> Capture | None:
        return next((c for c in self.screenshots if c.decisive), self.screenshots[-1] if self.screenshots else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CellResult:
        d = dict(data)
        d["outcome"] = Outcome(d["outcome"])
        d["expected"] = Outcome(d["expected"]) if d.get("expected") else None
        for key in ("requested_scopes", "optional_scopes", "missing_permissions"):
            d[key] = tuple(d.get(key) or ())
        for key in ("offered_scopes", "granted_scopes"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        d["screenshots"] = tuple(
            Capture(Screen(c["screen"]), c["path"], bool(c.get("decisive"))) for c in d.get("screenshots") or ()
        )
        diag = d.get("diagnosis")
        if diag:
            d["diagnosis"] = Diagnosis(
                blocking_scopes=tuple(diag["blocking_scopes"]),
                attribution=diag["attribution"],
                findings=tuple(ScopeFinding(**f) for f in diag.get("findings", ())),
                missing_permissions=tuple(diag.get("missing_permissions", ())),
                remedies=tuple(
                    Remedy(
                        kind=r["kind"],
                        summary=r["summary"],
                        verified=r.get("verified"),
                        outcome=Outcome(r["outcome"]) if r.get("outcome") else None,
                        missing_scopes=tuple(r.get("missing_scopes", ())),
                    )
                    for r in diag.get("remedies", ())
                ),
                probes=int(diag.get("probes", 0)),
                method=diag.get("method", ""),
                summary=diag.get("summary", ""),
                search_probes=int(diag.get("search_probes", 0)),
                candidates=tuple(diag.get("candidates", ())),
                probe_app=str(diag.get("probe_app", "")),
            )
        known = set(CellResult.__dataclass_fields__)
        return CellResult(**{k: v for k, v in d.items() if k in known})
