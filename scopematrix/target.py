"""Where a run goes (the embedded simulator or real HubSpot) and the credentials it uses."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from scopematrix.errors import UsageError
from scopematrix.matrix import Matrix

LIVE_APP_URL = "https://app.hubspot.com"
LIVE_API_URL = "https://api.hubapi.com"


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str = field(repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    storage_state: str | None = None


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str = ""


@dataclass(frozen=True)
class Target:
    kind: str  # sim | live
    app_url: str
    api_url: str
    apps: Mapping[str, AppCredentials]  # by the matrix's app id: the apps the run needs
    main_app: str  # the app of scope sets that name none
    credentials: Mapping[str, Credentials] = field(repr=False, default_factory=dict)
    # The simulator's test-support switches: per-cell isolation header and reset endpoint.
    isolation: bool = False

    def secrets(self) -> list[str]:
        out = [a.client_secret for a in self.apps.values()]
        for c in self.credentials.values():
            out += [c.password] + ([c.totp_secret] if c.totp_secret else [])
        return [s for s in out if s]

    def login_origins(self) -> frozenset[str]:
        """Where credentials may be typed: the configured HubSpot app origin, and for real HubSpot its
        regional app hosts (brief section 1)."""
        own = origin_of(self.app_url)
        if urlsplit(self.app_url).hostname in HUBSPOT_APP_HOSTS:
            return frozenset({own, *(f"https://{h}" for h in HUBSPOT_APP_HOSTS)})
        return frozenset({own})


HUBSPOT_APP_HOSTS = ("app.hubspot.com", "app-eu1.hubspot.com", "app-na2.hubspot.com")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{name}={value!r} is not an http(s) URL.", f"set {name} to e.g. {LIVE_APP_URL}.")
    return value.rstrip("/")


def load_env(env_file: Path | None) -> dict[str, str]:
    """The process environment over `.env` (python-dotenv); the environment wins."""
    path = env_file or Path(".env")
    values: dict[str, str] = {}
    if env_file is not None and not path.is_file():
        raise UsageError(f"{path}: env file not found.", "create it from .env.example or drop --env-file.")
    if path.is_file():
        try:
            values.update({k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None})
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text.", "save the env file as UTF-8.") from None
    values.update(os.environ)
    return values


def _is_storage_state(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("cookies", []), list)


def resolve_credentials(matrix: Matrix, env: Mapping[str, str], user_ids: set[str]) -> dict[str, Credentials]:
    creds: dict[str, Credentials] = {}
    for user in matrix.spec.users:
        if user.id not in user_ids:
            continue
        state = env.get(user.storage_state_env) if user.storage_state_env else None
        if state and not Path(state).is_file():
            raise UsageError(
                f"{user.storage_state_env}={state}: saved login file not found.",
                f"run 'scopematrix login --user {user.id}' or unset it.",
            )
        if state and not _is_storage_state(Path(state)):
            raise UsageError(
                f"{user.storage_state_env}={state}: not a Playwright storage state (JSON with cookies and origins).",
                f"save it again with 'scopematrix login --user {user.id}'.",
            )
        needed = [user.email_env] + ([] if state else [user.password_env])
        missing = [n for n in needed if not env.get(n)]
        if missing:
            raise UsageError(
                f"environment variable {missing[0]} is not set (user '{user.id}').",
                "set it in the environment or in .env (see .env.example).",
            )
        secret = env.get(user.totp_secret_env) if user.totp_secret_env else None
        if user.totp_secret_env and not secret and not state:
            raise UsageError(
                f"environment variable {user.totp_secret_env} is not set (user '{user.id}' uses TOTP).",
                "set it to the authenticator secret (base32) in the environment or .env.",
            )
        if secret and not re.fullmatch(r"[A-Z2-7]+=*", secret.upper().replace(" ", "")):
            raise UsageError(
                f"{user.totp_secret_env} is not a base32 TOTP secret.",
                "copy the secret shown when 2FA was set up.",
            )
        creds[user.id] = Credentials(env[user.email_env], env.get(user.password_env, ""), secret, state)
    return creds


def resolve_apps(matrix: Matrix, env: Mapping[str, str], app_ids: set[str] | None = None) -> dict[str, AppCredentials]:
    """Client id and secret of the apps (default: all), from the matrix or the environment variables it names."""
    apps: dict[str, AppCredentials] = {}
    for app in matrix.apps.values():
        if app_ids is not None and app.id not in app_ids:
            continue
        client_id = app.client_id or env.get(app.client_id_env or "", "")
        if not client_id:
            raise UsageError(
                f"environment variable {app.client_id_env} is not set (app '{app.id}').", "set the app's client id."
            )
        secret = env.get(app.client_secret_env, "")
        if not secret:
            raise UsageError(
                f"environment variable {app.client_secret_env} is not set (app '{app.id}').",
                "set the app's client secret in the environment or .env.",
            )
        apps[app.id] = AppCredentials(client_id, secret, app.redirect_uri)
    return apps


def live_target(
    matrix: Matrix,
    env: Mapping[str, str],
    user_ids: set[str],
    app_url: str | None,
    api_url: str | None,
    app_ids: set[str] | None = None,
) -> Target:
    return Target(
        kind="live",
        app_url=check_url("SCOPEMATRIX_APP_URL", app_url or env.get("SCOPEMATRIX_APP_URL") or LIVE_APP_URL),
        api_url=check_url("SCOPEMATRIX_API_URL", api_url or env.get("SCOPEMATRIX_API_URL") or LIVE_API_URL),
        apps=resolve_apps(matrix, env, app_ids),
        main_app=matrix.app.id,
        credentials=resolve_credentials(matrix, env, user_ids),
    )
