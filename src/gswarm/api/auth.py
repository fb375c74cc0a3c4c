"""Bearer-token guard for the API.

Rules (issue #6): bound to a loopback address, reads need no token; control and
configuration writes always need ``Authorization: Bearer <token>``; bound to any
other address, every API request needs it. ``/healthz`` and the static dashboard
files (no data in them) stay open so probes work and the page can ask for the
token. Missing or malformed header → 401, wrong token → 403. Comparison in
constant time (``hmac.compare_digest``).

The token is ``settings.api_token`` when set, else ``<state_dir>/api_token``
(created on first use with ``secrets.token_urlsafe(32)``, mode 0600). A token file
that is not text (binary), not a file (a folder) or unreadable raises
:class:`TokenFileError` naming it and saying what to do; it is never overwritten.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from fastapi import Request, Security
from fastapi.security import HTTPBearer

from gswarm.api.errors import ApiError
from gswarm.errors import ConfigError
from gswarm.paths import atomic_write

TOKEN_FILE = "api_token"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gswarm"'}
# Declares the scheme in OpenAPI (the "Authorize" button of /docs); parsing is done by Guard.
_SCHEME = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="Token from <state_dir>/api_token. Always needed for control and configuration "
                                 "writes; for reads only when GSwarm listens on a non-loopback address.")


def token_path(state_dir: Path) -> Path:
    """``<state_dir>/api_token``."""
    return Path(state_dir) / TOKEN_FILE


class TokenFileError(ConfigError):
    """``<state_dir>/api_token`` exists but cannot be used as a token (binary, a folder, unreadable)."""


def load_or_create_token(state_dir: Path, configured: str | None = None) -> str:
    """The API token: ``configured`` if given, else the token file (created 0600 when missing/empty).

    Raises TokenFileError when the file is binary, a folder, unreadable or not one line of
    printable ASCII, OSError when the state directory is not writable.
    """
    if configured:
        return configured
    path = token_path(state_dir)
    text = _read_token(path)
    if text:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return text
    token = secrets.token_urlsafe(32)
    atomic_write(path, token + "\n", mode=0o600)
    return token


def _read_token(path: Path) -> str:
    fix = ("delete it (a new token is created on the next start; clients then need the new one) "
           "or set GSWARM_API_TOKEN")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ""
    except IsADirectoryError:
        raise TokenFileError(f"API token file {path} is a folder, not a file; {fix}") from None
    except OSError as exc:
        raise TokenFileError(f"API token file {path} cannot be read ({exc.strerror or exc}); fix its permissions "
                             f"or {fix}") from None
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"API token file {path} is not text (binary data); {fix}") from None
    if text and not (text.isprintable() and " " not in text):
        raise TokenFileError(f"API token file {path} must hold one line with the token (no spaces or control "
                             f"characters); {fix}")
    return text


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1); False for 0.0.0.0 and others."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """Checks requests: ``Guard(token, reads_need_token)``; ``check(request, control)`` raises ApiError."""

    def __init__(self, token: str, reads_need_token: bool) -> None:
        self._token = token.encode("utf-8")
        self.reads_need_token = reads_need_token

    def check(self, request: Request, control: bool) -> None:
        """Raise ApiError 401 (no/malformed header) or 403 (wrong token) when a token is required."""
        if not control and not self.reads_need_token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>' "
                           "(token in <state_dir>/api_token)", None, _CHALLENGE)
        if not hmac.compare_digest(given.strip().encode("utf-8"), self._token):
            raise ApiError(403, "invalid token", None)

    def read(self, request: Request, _: object = Security(_SCHEME)) -> None:
        """FastAPI dependency for read endpoints."""
        self.check(request, control=False)

    def control(self, request: Request, _: object = Security(_SCHEME)) -> None:
        """FastAPI dependency for control and configuration writes."""
        self.check(request, control=True)
