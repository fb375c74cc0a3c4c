"""Response models of the API (they document ``/openapi.json``).

Units: every ``ts``/``*_at`` is Unix seconds (float); ``uptime`` seconds; bytes in bytes.
Row shapes of the store are documented in docs/architecture.md "Store".
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error: a clear message and optional detail (422: list of {field, in, message})."""

    error: str
    detail: Any = None


class MaintenanceOut(BaseModel):
    """An active maintenance window (``<state_dir>/maintenance.json``): no restarts, no alerts until ``until``."""

    until: float = Field(description="End of the window, Unix seconds.")
    reason: str = Field(description="Why (as given to `gswarm maintenance`); may be empty.")


class NodeOut(BaseModel):
    """One node: supervisor snapshot keys plus progress, last sample and last incident."""

    node: str
    supervised: bool = Field(description="True when a supervisor in this process watches the node.")
    state: Optional[str] = None
    pid: Optional[int] = None
    pgid: Optional[int] = None
    generation: Optional[str] = None
    mode: Optional[str] = None
    started_at: Optional[float] = None
    uptime: Optional[float] = None
    idle: Optional[float] = Field(None, description="Live only: seconds without a round/stage advance in this run "
                                  "(since its start when none yet), monotonic.")
    restarts: Optional[int] = None
    last_exit: Optional[dict[str, Any]] = None
    next_restart_at: Optional[float] = None
    fatal_reason: Optional[str] = None
    degraded: Optional[Any] = None
    progress: Optional[dict[str, Any]] = None
    last_advance: Optional[float] = None
    sample: Optional[dict[str, Any]] = None
    last_incident: Optional[dict[str, Any]] = None
    maintenance: Optional[MaintenanceOut] = Field(None, description="Active maintenance window, or null.")


class StatusOut(BaseModel):
    """``/api/v1/status``: ``source`` is ``live`` (inside gswarm run) or ``store`` (gswarm serve)."""

    version: str
    source: str
    now: float
    auth: dict[str, bool]
    maintenance: Optional[MaintenanceOut] = Field(None, description="Active maintenance window, or null.")
    nodes: list[NodeOut]


class PageOut(BaseModel):
    """A page of store rows, newest first; ``limit``/``offset`` echo the request."""

    items: list[dict[str, Any]]
    limit: int
    offset: int
    count: int


class MetricsOut(BaseModel):
    """Downsampled resources: ``points`` buckets of ``step`` seconds from ``since``."""

    node: str
    since: float
    until: float
    step: float
    samples: int
    series: dict[str, list[Optional[float]]]
    ts: list[float]


class CommandOut(BaseModel):
    """A control command accepted for the supervisor (202)."""

    accepted: bool
    node: str
    command: str


class ConfigOut(BaseModel):
    """Effective settings (secrets ``***``), the stored override and where it lives."""

    effective: dict[str, Any]
    override: Optional[dict[str, Any]] = Field(description="Options saved through the API; null when the file is unusable.")
    override_error: Optional[str] = Field(None, description="Why the stored override file cannot be used (fix or "
                                                            "delete it), or null.")
    override_file: str
    applies: str


class ReadyOut(BaseModel):
    """``/readyz``: ready (200) or not (503) with the reason."""

    ready: bool
    reason: str
    state: Optional[str] = None
    last_advance: Optional[float] = None
