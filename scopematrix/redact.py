"""Scrub secrets from any text the harness writes: known secret values, codes, tokens and state.

Playwright traces hold the same values in several shapes: in URLs (`?code=…`), in form bodies
(`code=…&state=…`), and in the network log's structured entries (`{"name": "code", "value": "…"}`,
headers, cookies). Each shape has its pattern here; known secrets (passwords, TOTP and client secrets)
are replaced wherever they appear.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"
SECRET_NAMES = r"code|state|access_token|refresh_token|client_secret|password|code_verifier|token"
# URL and form syntax: `?code=…`, `&state=…`, or a body that starts with `code=…`.
_PARAMS = re.compile(rf"((?:^|[?&#\s\"'(])(?:{SECRET_NAMES})=)[^&#\s\"'<)]*", re.I | re.M)
# Structured name/value entries (trace network log: queryString, postData.params, headers, cookies).
_NAME_VALUE = re.compile(
    rf"(\"name\"\s*:\s*\"(?:{SECRET_NAMES}|authorization|cookie|set-cookie|hs_session)\"\s*,\s*\"value\"\s*:\s*\")"
    r"(?:[^\"\\]|\\.)*",
    re.I,
)
# JSON objects keyed by the secret's name (token responses).
_JSON_KEY = re.compile(rf"(\"(?:{SECRET_NAMES})\"\s*:\s*\")(?:[^\"\\]|\\.)*", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
# Session cookies in raw header text.
_COOKIE = re.compile(r"((?:hs_session|hs_login|hs_2fa_device)=)[^;\s\"&]*", re.I)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._new: list[str] = []  # added since the last redaction
        self._patterns: list[re.Pattern[str]] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Scrub these values from now on, in every encoding an artifact may hold them: raw, URL-encoded once
        or twice, HTML-escaped, base64. Longest first, so a secret that contains another is replaced whole."""
        shapes = {shape for s in secrets if s and len(s) >= 4 for shape in _encodings(s)} - self._known
        self._known |= shapes
        self._new += shapes

    def _compiled(self) -> list[re.Pattern[str]]:
        """The known values as a few patterns: each redaction compiles only what is new since the last (a
        walk adds its state), and every 16 batches they are merged into one, so neither compiling nor
        scanning grows with the number of walks."""
        if self._new:
            self._patterns.append(_alternation(self._new))
            self._new = []
            if len(self._patterns) > 16:
                self._patterns = [_alternation(self._known)]
        return self._patterns

    def __call__(self, text: str) -> str:
        for values in self._compiled():
            text = values.sub(REDACTED, text)
        for pattern in (_PARAMS, _NAME_VALUE, _JSON_KEY, _BEARER, _COOKIE):
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


def _alternation(values: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so a value that contains another is replaced whole.
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def _encodings(secret: str) -> set[str]:
    once = quote(secret, safe="")
    b64 = base64.b64encode(secret.encode()).decode()
    return {secret, once, quote(once, safe=""), quote_plus(secret), html.escape(secret), b64, b64.rstrip("=")}


class RedactingFilter(logging.Filter):
    """Scrubs log records (httpx logs the token-info URL with the token in it) before any handler sees them,
    pytest's --log-file included."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        return True


def redact_zip(path: Path, redact: Redactor) -> None:
    """Rewrite a zip (a Playwright trace) with every text member scrubbed; binary members are kept."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            try:
                data = redact(data.decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                pass
            dst.writestr(info, data)
    tmp.replace(path)
