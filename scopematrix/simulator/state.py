"""The simulator's mutable state. One instance per app; nothing lives at module level."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["5xx", "hang", "drop", "maintenance", "tamper-state", "stuck-controls", "redirect"]
FAULT_KINDS: tuple[str, ...] = ("5xx", "hang", "drop", "maintenance", "tamper-state", "stuck-controls", "redirect")


@dataclass
class Fault:
    """Misbehave on requests whose path starts with `path` (ends with `$`: is exactly it); `times` None means
    every time."""

    path: str
    kind: FaultKind
    times: int | None = None
    to: str = ""  # kind "redirect": the origin the request is sent to (the same path and query there)


@dataclass
class SimOptions:
    # Test-support switches are reachable only when test_support is True (never in `scopematrix sim`
    # without --test-support): /__sim/* endpoints and the per-request isolation header.
    test_support: bool = False
    latency_s: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    code_ttl_s: float = 300.0
    access_ttl_s: int = 1800
    max_query_chars: int = 16_384


@dataclass
class PendingLogin:
    email: str
    next: str
    user_id: str | None = None
    stage: Literal["password", "2fa", "remember"] = "password"


@dataclass
class PendingGrant:
    session: str
    namespace: str
    client_id: str
    hub_id: int
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    user_id: str


@dataclass
class CodeRecord:
    client_id: str
    redirect_uri: str
    hub_id: int
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass
class TokenRecord:
    client_id: str
    hub_id: int
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float = 0.0


@dataclass
class SimState:
    sessions: dict[str, str] = field(default_factory=dict)
    logins: dict[str, PendingLogin] = field(default_factory=dict)
    remembered_devices: set[str] = field(default_factory=set)
    grants: dict[str, PendingGrant] = field(default_factory=dict)
    # (namespace, client_id, hub_id) -> scopes approved for the app in that account
    installs: dict[tuple[str, str, int], set[str]] = field(default_factory=dict)
    codes: dict[str, CodeRecord] = field(default_factory=dict)
    access_tokens: dict[str, TokenRecord] = field(default_factory=dict)
    refresh_tokens: dict[str, TokenRecord] = field(default_factory=dict)

    def approved(self, namespace: str, client_id: str, hub_id: int) -> set[str]:
        return self.installs.get((namespace, client_id, hub_id), set())

    def installed_apps(self, namespace: str, hub_id: int) -> dict[str, set[str]]:
        """Every app installed in the account during the run (in this namespace): client_id -> scopes."""
        return {cid: scopes for (ns, cid, hub), scopes in self.installs.items() if ns == namespace and hub == hub_id}

    def reset(self, namespace: str | None) -> None:
        """Forget installs (of one namespace, or all) and, for a full reset, sessions and tokens."""
        if namespace is not None:
            for key in [k for k in self.installs if k[0] == namespace]:
                del self.installs[key]
            return
        for store in (self.sessions, self.logins, self.grants, self.installs, self.codes):
            store.clear()
        for tokens in (self.access_tokens, self.refresh_tokens):
            tokens.clear()
        self.remembered_devices.clear()

    def new_code(self, record: CodeRecord) -> str:
        code = f"na1-{secrets.token_hex(2)}-{uuid.uuid4()}"
        self.codes[code] = record
        return code

    def mint_access(self, record: TokenRecord, ttl: int) -> str:
        access = "CO" + secrets.token_urlsafe(192)
        self.access_tokens[access] = TokenRecord(
            record.client_id, record.hub_id, record.user_id, record.scopes, time.time() + ttl
        )
        return access

    def mint_refresh(self, record: TokenRecord) -> str:
        refresh = f"na1-{secrets.token_hex(2)}-{uuid.uuid4()}"
        self.refresh_tokens[refresh] = record
        return refresh
