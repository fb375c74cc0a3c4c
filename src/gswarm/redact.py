"""Redaction of secrets in notification (Apprise) URLs, for every log line, event, API answer and bundle.

Keeps the scheme, a real host name and harmless query arguments and hides everything
that can be a secret: user, password, path segments (tokens, chat ids), hosts that are
tokens (``tgram://``/``discord://`` put the bot token or webhook id in the host
position) and other query values.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

_SAFE_QUERY = frozenset({"mode", "smtp", "from", "to", "format", "cto", "rto", "verify", "name", "overflow"})
_HOSTLIKE = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-f:]+\]|([a-z0-9-]+\.)+[a-z]{2,})$", re.I)
_TOKEN_HOST_SCHEMES = frozenset({"tgram", "discord", "slack", "pover", "pbul", "tgrams"})
MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with secrets replaced by ``***`` (see the module docstring); never raises."""
    if "://" not in url:
        return MASK
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        shown = host if (_HOSTLIKE.match(host) and scheme not in _TOKEN_HOST_SCHEMES) else MASK
        port = _port(parts)
        if port and shown != MASK:
            shown += f":{port}"
        if parts.username or parts.password:
            shown = f"{MASK}@{shown}"
        path = "/" + "/".join(MASK for seg in parts.path.split("/") if seg) if parts.path.strip("/") else ""
        query = [(k, v if k.lower() in _SAFE_QUERY else MASK) for k, v in parse_qsl(parts.query)]
        tail = ("?" + urlencode(query, safe="@*")) if query else ""
        return f"{scheme}://{shown}{path}{tail}"
    except ValueError:
        return url.split("://", 1)[0] + "://" + MASK


def _port(parts: object) -> int | None:
    try:
        return parts.port  # type: ignore[attr-defined]
    except ValueError:  # "tgram://123:TOKEN" parses TOKEN as a port
        return None


def secrets_of(url: str) -> list[str]:
    """Substrings of ``url`` that must never appear in logs (tokens, passwords, ids), longest first."""
    out: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    for s in (parts.username, parts.password):
        if s:
            out.add(s)
    if parts.hostname and (parts.scheme.lower() in _TOKEN_HOST_SCHEMES or not _HOSTLIKE.match(parts.hostname)):
        out.add(parts.netloc.rsplit("@", 1)[-1])
    out.update(seg for seg in parts.path.split("/") if len(seg) >= 4)
    out.update(v for k, v in parse_qsl(parts.query) if k.lower() not in _SAFE_QUERY and len(v) >= 4)
    out |= {unquote(s) for s in out}
    return sorted(out, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every string of ``secrets`` replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text
