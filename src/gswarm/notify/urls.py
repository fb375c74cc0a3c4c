"""Apprise URL helpers: build Telegram / Discord / e-mail URLs, redact secrets.

URL forms follow Apprise's plugin docs (appriseit.com/services): Telegram
``tgram://BOT_TOKEN/CHAT_ID``, Discord ``discord://WEBHOOK_ID/WEBHOOK_TOKEN``,
e-mail ``mailto://`` (plain SMTP) or ``mailtos://`` (TLS; ``mode=starttls`` on
587 or ``mode=ssl`` on 465) with ``smtp``/``from``/``to`` query arguments.

Redaction of these URLs lives in :mod:`gswarm.redact` (re-exported here).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote, urlencode

from gswarm.errors import ConfigError
from gswarm.redact import MASK, redact_url, scrub, secrets_of  # noqa: F401  (re-exported for notify)



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
    address. User and password are percent-quoted. Raises ConfigError on a bad ``tls``, a ``port``
    outside 1-65535 or a missing sender/recipient.
    """
    if tls not in ("starttls", "ssl", "none"):
        raise ConfigError(f"e-mail tls must be starttls, ssl or none, not {tls!r}")
    sender = sender or (user if user and "@" in user else None)
    if not sender or "@" not in sender:
        raise ConfigError("e-mail needs a sender address (--from) or a user that is an address")
    if "@" not in to:
        raise ConfigError(f"e-mail recipient {to!r} is not an address")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"e-mail --port {port} is not a TCP port; use 1-65535 (587 starttls, 465 ssl, 25 none)")
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
