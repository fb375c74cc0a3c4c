"""Apprise URL helpers: build Telegram / Discord / e-mail URLs, redact secrets.

URL forms follow Apprise's plugin docs (appriseit.com/services): Telegram
``tgram://BOT_TOKEN/CHAT_ID``, Discord ``discord://WEBHOOK_ID/WEBHOOK_TOKEN``,
e-mail ``mailto://`` (plain SMTP) or ``mailtos://`` (TLS; ``mode=starttls`` on
587 or ``mode=ssl`` on 465) with ``smtp``/``from``/``to`` query arguments.

Redaction keeps the scheme, a real host name and harmless query arguments and
hides everything that can be a secret: user, password, path segments (tokens,
chat ids), hosts that are tokens (``tgram://``/``discord://`` put the bot token
or webhook id in the host position) and other query values.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from gswarm.errors import ConfigError

_SAFE_QUERY = frozenset({"mode", "smtp", "from", "to", "format", "cto", "rto", "verify", "name", "overflow"})
_HOSTLIKE = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-f:]+\]|([a-z0-9-]+\.)+[a-z]{2,})$", re.I)
_TOKEN_HOST_SCHEMES = frozenset({"tgram", "discord", "slack", "pover", "pbul", "tgrams"})
MASK = "***"


def telegram_url(bot_token: str, chat_id: str | int) -> str:
    """``tgram://BOT_TOKEN/CHAT_ID`` for a bot token (``123456:ABC…``) and chat id.

    Raises ConfigError when the token is not ``<digits>:<secret>`` or the chat id is empty.
    """
    token = bot_token.strip()
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
        raise ConfigError("telegram bot token must look like 123456789:AA…; copy it from @BotFather")
    chat = str(chat_id).strip()
    if not chat:
        raise ConfigError("telegram chat id is empty; send /start to the bot and read it from getUpdates")
    return f"tgram://{token}/{chat}"


def discord_url(webhook_url: str) -> str:
    """``discord://ID/TOKEN`` from a webhook URL ``https://discord.com/api/webhooks/ID/TOKEN``.

    Raises ConfigError when the URL is not a Discord webhook URL.
    """
    m = re.match(r"^https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/(\d+)/([A-Za-z0-9_-]+)/?$",
                 webhook_url.strip())
    if not m:
        raise ConfigError("discord webhook URL must be https://discord.com/api/webhooks/<id>/<token> "
                          "(Server Settings → Integrations → Webhooks → Copy Webhook URL)")
    return f"discord://{m.group(1)}/{m.group(2)}"


def email_url(
    host: str,
    to: str,
    *,
    port: int | None = None,
    user: str | None = None,
    password: str | None = None,
    tls: Literal["starttls", "ssl", "none"] = "starttls",
    sender: str | None = None,
) -> str:
    """An Apprise e-mail URL for an SMTP server.

    ``tls``: ``starttls`` (port 587 by default) or ``ssl`` (465) give ``mailtos://…?mode=…``;
    ``none`` gives plain ``mailto://`` (port 25). ``sender`` defaults to ``user`` when it is an
    address. User and password are percent-quoted. Raises ConfigError on a bad ``tls`` or
    missing sender/recipient.
    """
    if tls not in ("starttls", "ssl", "none"):
        raise ConfigError(f"e-mail tls must be starttls, ssl or none, not {tls!r}")
    sender = sender or (user if user and "@" in user else None)
    if not sender or "@" not in sender:
        raise ConfigError("e-mail needs a sender address (--from) or a user that is an address")
    if "@" not in to:
        raise ConfigError(f"e-mail recipient {to!r} is not an address")
    auth = ""
    if user:
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        auth += "@"
    netloc = host + (f":{int(port)}" if port else "")
    query: dict[str, str] = {"from": sender, "to": to}
    if tls == "none":
        return f"mailto://{auth}{netloc}?{urlencode(query, safe='@')}"
    query["mode"] = tls
    return f"mailtos://{auth}{netloc}?{urlencode(query, safe='@')}"


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
