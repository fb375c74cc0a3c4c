"""``gswarm reload``: re-read the configuration inside the running supervisor and apply what can be applied live.

The options are loaded again exactly as at the start (``rt.cli_flags``: the command-line flags of
``gswarm run``, else ``--state-dir``/``--config-file`` only; the supervisor's own environment; the TOML
file; ``config_override.json``) and compared with the previous load (not with ``rt.settings``, which the
emulator and the OOM ladder adjust on purpose). Changed options fall in three groups:

- **live**: notifications (``notify_*``, ``quiet_hours``) — the notify service is rebuilt in place
  (:meth:`gswarm.notify.service.NotifyService.reconfigure`, or started when it had no channel) — and the
  heartbeat (``heartbeat_*``, read on every tick);
- **next node start**: the node's options and the supervision policy (backoff, crash loop, …) go into
  ``rt.settings`` at once and are used from the next (re)start: ``gswarm restart`` applies them now;
- **gswarm restart**: everything else (API address, state dir, node name, checkout, sampling, log files):
  ``systemctl --user restart gswarm`` (or stop and start ``gswarm run``).

A configuration that does not load answers ``ok: false`` with the ConfigError text; nothing is changed.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

from gswarm.errors import GSwarmError

log = logging.getLogger(__name__)

LIVE_PREFIXES = ("notify_", "heartbeat_")
LIVE_FIELDS = frozenset({"quiet_hours"})
RESTART_GSWARM = frozenset({"node_name", "rl_swarm_dir", "state_dir", "config_file", "api_enabled", "api_host", "api_port",
                            "api_token", "sample_interval", "retention_days", "log_max_bytes", "log_backups", "emulated",
                            "auto_setup", "hardware", "modal_port", "ollama_port", "login_timeout", "activation_timeout"})


def group_of(name: str) -> str:
    """``"live"``, ``"next_start"`` or ``"restart_gswarm"`` for option ``name`` (see the module docstring)."""
    if name in LIVE_FIELDS or name.startswith(LIVE_PREFIXES):
        return "live"
    return "restart_gswarm" if name in RESTART_GSWARM else "next_start"


def load_again(rt: Any) -> Any:
    """The settings as ``gswarm run`` would load them now (raises ConfigError)."""
    from gswarm.config import load_settings

    flags = getattr(rt, "cli_flags", None)
    if flags is None:
        flags = {"state_dir": rt.settings.state_dir, "config_file": rt.settings.config_file}
    return load_settings(flags)


def remember_baseline(rt: Any) -> None:
    """Store the load the next reload compares with (``rt.reload_baseline``); a failing load stores
    ``rt.settings`` instead."""
    try:
        rt.reload_baseline = load_again(rt)
    except GSwarmError:
        rt.reload_baseline = rt.settings


async def reload(rt: Any) -> dict[str, Any]:
    """Reload the configuration of runtime ``rt``. Returns ``{"ok", "message", "live": [...],
    "next_start": [...], "restart_gswarm": [...]}`` (option names, sorted)."""
    try:
        new = await asyncio.to_thread(load_again, rt)
    except GSwarmError as exc:
        return {"ok": False, "message": f"configuration not reloaded: {exc}", "live": [], "next_start": [], "restart_gswarm": []}
    old = getattr(rt, "reload_baseline", None) or rt.settings
    changed = sorted(n for n in type(new).model_fields if getattr(new, n) != getattr(old, n, None))
    groups: dict[str, list[str]] = {"live": [], "next_start": [], "restart_gswarm": []}
    for name in changed:
        groups[group_of(name)].append(name)
    applied = {n: getattr(new, n) for n in groups["live"] + groups["next_start"]}
    if applied:
        rt.update_settings(**applied)
    rt.reload_baseline = new
    if any(not n.startswith("heartbeat_") for n in groups["live"]):
        try:
            await apply_notify(rt)
        except Exception as exc:  # a channel Apprise chokes on must not break the supervisor
            log.exception("reload: notifications not reconfigured")
            return {"ok": False, "message": f"notifications could not be reconfigured ({exc}); the old ones stay; "
                    "fix the notify options and run gswarm reload again", **groups}
    return {"ok": True, "message": describe(groups), **groups}


def describe(groups: dict[str, list[str]]) -> str:
    """One operator sentence per non-empty group."""
    parts = []
    if groups["live"]:
        parts.append(f"applied now: {', '.join(groups['live'])}")
    if groups["next_start"]:
        parts.append(f"used from the node's next start (`gswarm restart` applies them now): {', '.join(groups['next_start'])}")
    if groups["restart_gswarm"]:
        parts.append(f"need a restart of gswarm itself (e.g. `systemctl --user restart gswarm`): "
                     f"{', '.join(groups['restart_gswarm'])}")
    return "; ".join(parts) if parts else "configuration reloaded: nothing changed"


async def apply_notify(rt: Any) -> None:
    """Rebuild the notify service's parts from ``rt.settings``; start one when there was none."""
    from gswarm.notify import service as notify

    current = next((s for s in rt.services if getattr(s, "name", "") == "notify"), None)
    if current is not None:
        await current.reconfigure(rt.settings)
        return
    view = SimpleNamespace(settings=rt.settings, bus=rt.bus, clock=rt.clock, state_dir=rt.state_dir, node=rt.node)
    fresh = notify.create_service(view)
    if fresh is not None:
        rt.services.append(fresh)
        owner = getattr(rt, "daemon", None)
        if owner is not None:
            owner.adopt(fresh)
