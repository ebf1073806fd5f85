"""The harness's typed records: outcomes, screens, captures, diagnoses and cell results.

Everything that crosses a module boundary is one of these; results.json is their serialised form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import TypeAdapter

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
    probe_app: str = ""  # the probe app, where the search used its plan ("" for the cell's own app only)


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
    # How a customer would describe this cell (from the matrix): for `explain` and the troubleshooting page.
    customer_role: str = ""
    account_products: dict[str, str] | None = None
    app_name: str = ""
    scope_set_label: str = ""

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
    def from_dict(data: object) -> CellResult:
        """A record read back from disk, validated field by field (pydantic's ValidationError, a ValueError,
        names the field and what is wrong with it). Keys this version doesn't know are ignored."""
        return _cell_adapter().validate_python(data)


@cache  # built on first use: the schema costs a few ms that a run which reads nothing back needn't pay
def _cell_adapter() -> TypeAdapter[CellResult]:
    return TypeAdapter(CellResult)


def validation_reason(exc: ValueError) -> str:
    """The first thing pydantic found wrong, as `field.path: message` (any other ValueError as it is)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)
