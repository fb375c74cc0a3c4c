"""Dead-man heartbeat (healthchecks.io / Uptime Kuma "push" style).

Every ``heartbeat_interval`` seconds (read from ``rt.settings`` on each tick, so ``gswarm reload`` applies a
change) GSwarm sends ``GET heartbeat_url`` while the node is healthy (RUNNING or DEGRADED, or any state
during a maintenance window: the operator asked for quiet). On a give-up (the watcher's
``RecoveryAction`` with ``data["gave_up"]``: FATAL crash loop, stop-and-alert) it POSTs the cause as text
to ``heartbeat_fail_url`` (default ``heartbeat_url + "/fail"``, healthchecks.io's convention). When GSwarm
or its host dies nothing is sent, and the checker alerts on the missing ping — which no in-process alert
can report. URLs are never logged unredacted (they carry the check's token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gswarm import maintenance
from gswarm.events import RecoveryAction
from gswarm.redact import redact_url

log = logging.getLogger(__name__)
HEALTHY = frozenset({"RUNNING", "DEGRADED"})
TIMEOUT = 10.0  # seconds per request


def fail_url(settings: Any) -> str | None:
    """The failure URL for ``settings`` (explicit, else ``heartbeat_url/fail``), or None when off."""
    url = getattr(settings, "heartbeat_url", None)
    explicit = getattr(settings, "heartbeat_fail_url", None)
    if explicit:
        return explicit
    return url.rstrip("/") + "/fail" if url else None


class HeartbeatService:
    """Service ``heartbeat`` for runtime ``rt``. ``client``: an ``httpx.AsyncClient`` (default: a new one
    with a 10 s timeout). ``sent``/``failed`` count requests."""

    name = "heartbeat"

    def __init__(self, rt: Any, client: Any = None) -> None:
        self.rt, self.client = rt, client
        self.sent = self.failed = 0
        self._own = False
        self._pending: set[asyncio.Task] = set()

    def on_event(self, ev: Any) -> None:
        """Bus subscriber: a give-up of our node → POST the cause to the failure URL (in a task)."""
        data = getattr(ev, "data", None)
        if isinstance(ev, RecoveryAction) and ev.node == self.rt.node and isinstance(data, dict) and data.get("gave_up"):
            url = fail_url(self.rt.settings)
            if url:
                body = f"node {ev.node} gave up ({data.get('state')}): {data.get('reason') or ev.detail}; cause {data.get('cause')}"
                task = asyncio.ensure_future(self._send("POST", url, body))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    def healthy(self) -> bool:
        """Whether a success ping is due now: node RUNNING/DEGRADED, or a maintenance window is active."""
        if self.rt.snapshot()["state"] in HEALTHY:
            return True
        return maintenance.active_until(self.rt.state_dir, self.rt.clock.time()) is not None

    async def _send(self, method: str, url: str, body: str | None = None) -> bool:
        if self.client is None:  # created on first use: most runs have no heartbeat
            import httpx

            self.client, self._own = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True), True
        try:
            resp = await self.client.request(method, url, content=body)
            ok = resp.status_code < 400
            if not ok:
                log.warning("heartbeat %s %s answered %s", method, redact_url(url), resp.status_code)
        except Exception as exc:  # httpx errors, bad URL: never hurt the supervisor
            log.warning("heartbeat %s %s failed: %s", method, redact_url(url), type(exc).__name__)
            ok = False
        self.sent += ok
        self.failed += not ok
        return ok

    async def tick(self) -> None:
        """One heartbeat decision: ping when a URL is set and the node is healthy."""
        url = getattr(self.rt.settings, "heartbeat_url", None)
        if url and self.healthy():
            await self._send("GET", url)

    async def run(self) -> None:
        """Tick every ``heartbeat_interval`` s (injected clock) until cancelled; then finish pending failure
        pings (at most 5 s). Never raises out."""
        unsubscribe = self.rt.bus.subscribe(self.on_event)
        try:
            while True:
                await self.rt.clock.sleep(float(getattr(self.rt.settings, "heartbeat_interval", 60.0)))
                await self.tick()
        finally:
            unsubscribe()
            if self._pending:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait(self._pending, timeout=5.0)
            if self._own and self.client is not None:
                with contextlib.suppress(Exception):
                    await self.client.aclose()


def create_service(rt: Any) -> HeartbeatService:
    """Always created (it idles without ``heartbeat_url``), so ``gswarm reload`` can turn it on."""
    return HeartbeatService(rt)
