"""Remove secrets from text put into a ``gswarm bundle`` (private helper of ``cli/diagnose.py``).

Patterns: Hugging Face tokens (``hf_`` + 8+ alphanumerics), bearer tokens, PEM private keys, 64-hex private
keys (``0x…``; tx hashes are scrubbed too, harmless), ``"privateKey": "…"`` fields (modal-login
userApiKey.json, generations.md §2.4), ``NAME_WITH_TOKEN/SECRET/PASSWORD/API_KEY=value`` assignments, URL
credentials (``scheme://user:pass@``) and every Apprise notification URL (tokens live in their paths).
Known secret values (settings secrets, notify URLs, the API token file) and the operator's ORG_IDs are
replaced literally first; ``ORG_ID=…`` assignments too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

MASK = "***"
APPRISE_SCHEMES = ("tgram", "discord", "slack", "mailto", "mailtos", "ntfy", "ntfys", "gotify", "gotifys", "matrix",
                   "matrixs", "signal", "signals", "pover", "pbul", "json", "jsons", "xml", "xmls", "form", "forms",
                   "twilio", "msteams", "rocket", "rockets", "mmost", "mmosts", "pushover", "apprise", "apprises",
                   "whatsapp", "zulip", "gchat", "line", "lametric", "bark", "barks", "opsgenie", "pagerduty")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), "[private key removed]"),
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}"), "hf_" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + MASK),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\"?private_?key\"?\s*[:=]\s*\"?)(?:0x)?[0-9a-fA-F]{16,}"), r"\1" + MASK),
    (re.compile(r"\b0x[0-9a-fA-F]{64}\b"), "0x" + MASK),
    (re.compile(r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|ORG_ID)[A-Z0-9_]*\s*[=:]\s*)(?!\*\*\*)[^\s\"',}]+"), r"\1" + MASK),
    (re.compile(r"\b(" + "|".join(APPRISE_SCHEMES) + r")://[^\s\"'<>]+"), r"\1://" + MASK),
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20}://)[^\s/@:\"']+:[^\s/@\"']+@"), r"\1" + MASK + "@"),
)


def secret_values(settings: Any, state_dir: Path | None = None) -> list[str]:
    """Literal secret strings known from ``settings`` (and ``<state_dir>/api_token``), longest first."""
    values: list[str] = []
    for name in ("hf_token", "api_token"):
        secret = getattr(settings, name, None)
        if secret is not None:
            values.append(secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret))
    values += list(getattr(settings, "notify_urls", []) or [])
    from gswarm.config.settings import is_secret_name

    values += [v for k, v in (getattr(settings, "extra_env", {}) or {}).items() if is_secret_name(k)]
    if state_dir is not None:
        try:
            values.append((Path(state_dir) / "api_token").read_text(encoding="utf-8").strip())
        except OSError:
            pass
    values += org_ids(settings, state_dir)
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def org_ids(settings: Any, state_dir: Path | None = None) -> list[str]:
    """ORG_IDs known here: ``--org-id``, the checkout's ``modal-login/temp-data/userData.json`` (its first key,
    generations.md §2.4) and GSwarm's 0600 backups of it under ``<state_dir>/backups``. Not a credential,
    but it ties a report to the operator's account (the public failure corpus anonymises it too)."""
    from gswarm.errors import LoginError
    from gswarm.rlswarm.identity import read_org_id

    found: list[str] = [str(settings.org_id)] if getattr(settings, "org_id", None) else []
    files = []
    checkout = getattr(settings, "rl_swarm_dir", None)
    if checkout is not None:
        files.append(Path(checkout).expanduser() / "modal-login" / "temp-data" / "userData.json")
    if state_dir is not None:
        files += list((Path(state_dir) / "backups").glob("*/userData.json"))
    for f in files:
        try:
            found.append(read_org_id(f))
        except LoginError:  # missing or broken: nothing to hide from it
            continue
    return [x for x in found if len(x) >= 8]


def scrub(text: str, literals: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every secret-looking pattern replaced by ``***``."""
    for value in literals:
        text = text.replace(value, MASK)
    for rx, repl in _RULES:
        text = rx.sub(repl, text)
    return text
