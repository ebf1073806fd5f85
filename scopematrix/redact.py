"""Scrub secrets from any text the harness writes: known secret values, codes, tokens and state."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

REDACTED = "[REDACTED]"
_PARAMS = re.compile(r"([?&#](?:code|state|access_token|refresh_token|client_secret|password)=)[^&#\s\"'<]*", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret that contains another is replaced whole.
        self._secrets = sorted({*self._secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _PARAMS.sub(lambda m: m.group(1) + REDACTED, text)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


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
