"""Notification channels: one Apprise URL each, with tags, kinds and a minimum severity.

Sources: ``settings.notify_urls`` / ``GSWARM_NOTIFY_URLS`` (space-separated; an
entry ``tag1,tag2=URL`` carries tags, Apprise's own text-config syntax) and an
optional TOML list (``[[notify_channels]]`` tables with ``url``, ``name``,
``tags``, ``kinds``, ``min_severity``) given to :func:`load_channels`.

``Channel.send`` is blocking (Apprise ``notify()``); the dispatcher runs it in a
worker thread with a deadline. Every error text passes through
:func:`gswarm.notify.urls.scrub` so tokens never reach a log or the status.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import apprise
from pydantic import BaseModel, Field, ValidationError, field_validator

from gswarm.errors import ConfigError
from gswarm.events import Severity
from gswarm.notify.urls import redact_url, scrub, secrets_of

log = logging.getLogger(__name__)


class ChannelConfig(BaseModel):
    """One channel. ``kinds`` None = every kind; ``min_severity`` None = the global minimum."""

    model_config = {"extra": "forbid"}

    url: str
    name: str = ""
    tags: list[str] = Field(default_factory=list)
    kinds: list[str] | None = None
    min_severity: Severity | None = None

    @field_validator("tags", "kinds", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v


def parse_url_entry(entry: str) -> ChannelConfig:
    """``"URL"`` or ``"tag1,tag2=URL"`` → ChannelConfig (tags before ``=`` only if it precedes ``://``)."""
    eq, sep = entry.find("="), entry.find("://")
    if 0 < eq < sep:
        return ChannelConfig(url=entry[eq + 1:], tags=entry[:eq])
    return ChannelConfig(url=entry)


def load_channels(
    urls: Iterable[str] = (),
    tables: Sequence[dict[str, Any]] = (),
    min_severity: str | Severity = Severity.WARNING,
    errors: list[str] | None = None,
) -> list["Channel"]:
    """Build channels from URL entries and TOML tables.

    Raises ConfigError naming the entry (redacted) when a table is malformed or Apprise does
    not understand a URL; when an ``errors`` list is given, such entries are skipped and their
    (redacted) messages appended to it instead.
    """
    default = Severity(min_severity)
    configs = [parse_url_entry(u) for u in urls if u.strip()]
    problems: list[str] = []
    for i, table in enumerate(tables):
        try:
            configs.append(ChannelConfig.model_validate(table))
        except ValidationError as exc:
            problems.append(_table_problem(i, table, exc))
    channels = []
    for i, c in enumerate(configs):
        try:
            channels.append(Channel(c, default, index=i))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems and errors is None:
        raise ConfigError("; ".join(problems))
    if errors is not None:
        errors.extend(problems)
    return channels


def _table_problem(index: int, table: Any, exc: ValidationError) -> str:
    """One line naming ``notify_channels[index]`` and each bad field (no input values: they may hold tokens)."""
    parts = [f"field {'.'.join(str(p) for p in e['loc']) or '(table)'}: {e['msg'][:1].lower()}{e['msg'][1:]}"
             for e in exc.errors()]
    return f"notify_channels[{index}]: {'; '.join(parts)}; allowed keys: url, name, tags, kinds, min_severity"


class Channel:
    """A live channel: config, the Apprise object and its redacted name.

    Raises ConfigError when Apprise cannot load the URL.
    """

    def __init__(self, config: ChannelConfig, default_min: Severity = Severity.WARNING, index: int = 0) -> None:
        self.config = config
        self.redacted = redact_url(config.url)
        self.name = config.name or f"{index}:{self.redacted}"
        self.min_severity = config.min_severity or default_min
        self.secrets = secrets_of(config.url)
        self.plugin = apprise.Apprise.instantiate(config.url)
        if self.plugin is None:
            raise ConfigError(f"notification URL {self.redacted} is not understood by Apprise; "
                              "see https://appriseit.com/services/ or `gswarm notify url --help`")
        self._apprise = apprise.Apprise()
        self._apprise.add(self.plugin)

    def wants(self, kind: str, severity: Severity, tag: str | None = None, force: bool = False) -> bool:
        """True when this channel takes a message of ``kind``/``severity`` (and has ``tag`` if given).

        ``force`` skips the severity minimum (digests, test messages), not the kinds/tag filter.
        """
        if tag is not None and tag not in self.config.tags:
            return False
        if self.config.kinds is not None and kind not in self.config.kinds:
            return False
        return force or severity.rank >= self.min_severity.rank

    def set_timeout(self, seconds: float) -> None:
        """Socket connect/read timeouts of the Apprise plugin, seconds."""
        self.plugin.socket_connect_timeout = float(seconds)
        self.plugin.socket_read_timeout = float(seconds)

    def send(self, title: str, body: str, severity: Severity, attach: Path | None = None) -> tuple[bool, str]:
        """Deliver one message (blocking). Returns ``(ok, error_text)``; never raises; error redacted."""
        notify_type = {Severity.CRITICAL: apprise.NotifyType.FAILURE, Severity.ERROR: apprise.NotifyType.FAILURE,
                       Severity.WARNING: apprise.NotifyType.WARNING}.get(severity, apprise.NotifyType.INFO)
        try:
            result = self._apprise.notify(body=body or title, title=title, notify_type=notify_type,  # never an empty body
                                          body_format=apprise.NotifyFormat.TEXT,
                                          attach=str(attach) if attach else None)
        except Exception as exc:  # Apprise plugins may raise on odd input
            return False, self.clean(f"{type(exc).__name__}: {exc}")
        if result:
            return True, ""
        return False, self.clean(_why(result) or "delivery failed (Apprise returned False)")

    def clean(self, text: str) -> str:
        """``text`` with this channel's secrets hidden."""
        return scrub(text, self.secrets)


def _why(result: Any) -> str:
    """Best-effort failure reason from an AppriseResult's log entries."""
    try:
        entries = [str(getattr(e, "message", e)) for e in result.logs()]
    except Exception:
        return ""
    errs = [e for e in entries if e]
    return errs[-1][:300] if errs else ""
