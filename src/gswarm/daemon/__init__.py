"""Running unattended (issue #14): control socket, sd_notify, heartbeat, service files.

:func:`create_service` is the runtime's one registration (``gswarm.daemon:create_service``): a
:class:`DaemonService` that runs the control socket (:mod:`gswarm.daemon.control`), the sd_notify service
(:mod:`gswarm.daemon.systemd`, only under systemd) and the heartbeat (:mod:`gswarm.daemon.heartbeat`)
side by side, plus any service a ``gswarm reload`` starts later (e.g. notifications that had no channel).
Service files (systemd unit, launchd plist, manifest) are in :mod:`gswarm.daemon.units`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class DaemonService:
    """Runs ``parts`` (Services) as tasks until cancelled, then cancels them in reverse order."""

    name = "daemon"

    def __init__(self, rt: Any, parts: list[Any]) -> None:
        self.rt, self.parts = rt, parts
        self._tasks: list[asyncio.Task] = []

    def adopt(self, svc: Any) -> None:
        """Start ``svc.run()`` as one more part (called from the loop, e.g. by reload)."""
        self.parts.append(svc)
        self._tasks.append(asyncio.ensure_future(self._guard(svc)))

    async def _guard(self, svc: Any) -> None:
        try:
            await svc.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("service %s failed", getattr(svc, "name", svc))

    async def run(self) -> None:
        """Start every part; wait until cancelled. Never raises out."""
        self._tasks = [asyncio.ensure_future(self._guard(p)) for p in self.parts]
        try:
            await asyncio.Future()
        finally:
            for task in reversed(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


def create_service(rt: Any) -> DaemonService:
    """The daemon service of runtime ``rt`` (sets ``rt.daemon``); remembers the configuration ``gswarm reload``
    compares with."""
    from gswarm.daemon import heartbeat, systemd
    from gswarm.daemon.control import ControlServer
    from gswarm.daemon.reload import remember_baseline

    remember_baseline(rt)
    parts: list[Any] = [ControlServer(rt), heartbeat.create_service(rt)]
    notifier = systemd.create_service(rt)
    if notifier is not None:
        parts.append(notifier)
    rt.daemon = DaemonService(rt, parts)
    return rt.daemon
