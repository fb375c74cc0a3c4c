"""Delivery off the critical path: one worker and one bounded queue per channel.

Apprise's blocking ``notify()`` runs in a small dedicated thread pool (not the
loop's default executor, so a hanging channel can never hold up ``asyncio.run``
shutdown) under a real-time deadline ``timeout``; failures are retried
``retries`` times with exponential backoff on the injected clock
(``backoff * 2**attempt`` seconds). A slow channel only fills its own queue
(``queue_size``; the oldest message is dropped when full). Errors are redacted,
logged and kept in :meth:`Dispatcher.status`; nothing here raises into callers.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from gswarm.clock import Clock, SystemClock
from gswarm.notify.channels import Channel
from gswarm.notify.rules import Message
from gswarm.notify.urls import scrub

log = logging.getLogger(__name__)


@dataclass
class ChannelStatus:
    """Delivery record of one channel; times are Unix seconds, errors redacted."""

    name: str
    url: str
    tags: list[str]
    sent: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    dropped: int = 0
    last_ok: float | None = None
    last_error: str = ""
    last_error_at: float | None = None


class _Scrubber(logging.Filter):
    """Hides channel secrets in records of the ``apprise`` logger."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self.secrets), ()
        return True


class Dispatcher:
    """Sends messages to channels. ``timeout`` seconds per attempt (real time); backoff on ``clock``."""

    def __init__(self, channels: Sequence[Channel], clock: Clock | None = None, timeout: float = 10.0,
                 retries: int = 2, backoff: float = 5.0, queue_size: int = 100) -> None:
        self.channels = list(channels)
        self.clock = clock or SystemClock()
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._status = {c.name: ChannelStatus(c.name, c.redacted, list(c.config.tags)) for c in self.channels}
        self._queues: dict[str, asyncio.Queue[Message]] = {c.name: asyncio.Queue(queue_size) for c in self.channels}
        self._pool = ThreadPoolExecutor(max_workers=max(4, 2 * len(self.channels)), thread_name_prefix="gswarm-notify")
        self._tasks: list[asyncio.Task[None]] = []
        self._scrubber = _Scrubber(sorted({s for c in self.channels for s in c.secrets}, key=len, reverse=True))
        logging.getLogger("apprise").addFilter(self._scrubber)
        for c in self.channels:
            c.set_timeout(timeout)

    def start(self) -> None:
        """Start one worker task per channel (call inside the running loop)."""
        self._tasks = [asyncio.create_task(self._worker(c), name=f"notify:{c.name}") for c in self.channels]

    def submit(self, msg: Message, tag: str | None = None) -> int:
        """Queue ``msg`` for every channel that wants it; returns how many. Never blocks."""
        n = 0
        for ch in self.channels:
            if not ch.wants(msg.kind, msg.severity, tag, force=msg.force):
                continue
            q = self._queues[ch.name]
            if q.full():
                q.get_nowait()
                q.task_done()  # the dropped message counts as finished (drain() joins the queue)
                self._status[ch.name].dropped += 1
            q.put_nowait(msg)
            n += 1
        return n

    async def send_now(self, msg: Message, tag: str | None = None) -> dict[str, tuple[bool, str]]:
        """Deliver ``msg`` to every channel that wants it, concurrently; ``{name: (ok, error)}``."""
        chosen = [c for c in self.channels if c.wants(msg.kind, msg.severity, tag, force=msg.force)]
        results = await asyncio.gather(*(self.deliver(c, msg) for c in chosen))
        return {c.name: r for c, r in zip(chosen, results)}

    async def deliver(self, ch: Channel, msg: Message) -> tuple[bool, str]:
        """Send with deadline and retries; records status; returns ``(ok, redacted error)``."""
        st, loop, err = self._status[ch.name], asyncio.get_running_loop(), ""
        for attempt in range(self.retries + 1):
            if attempt:
                await self.clock.sleep(self.backoff * 2 ** (attempt - 1))
            fut = loop.run_in_executor(self._pool, ch.send, msg.title, msg.body, msg.severity, msg.attach)
            try:
                ok, err = await asyncio.wait_for(fut, self.timeout)
            except asyncio.TimeoutError:
                ok, err = False, f"timed out after {self.timeout:g} s"
            except Exception as exc:  # pool shut down, etc.
                ok, err = False, ch.clean(f"{type(exc).__name__}: {exc}")
            if ok:
                st.sent, st.last_ok, st.consecutive_failures = st.sent + 1, self.clock.time(), 0
                return True, ""
            st.failures += 1
            st.consecutive_failures += 1
            st.last_error, st.last_error_at = err, self.clock.time()
            log.warning("notification %r to %s failed (attempt %d/%d): %s",
                        msg.kind, ch.redacted, attempt + 1, self.retries + 1, err)
        return False, err

    async def _worker(self, ch: Channel) -> None:
        q = self._queues[ch.name]
        while True:
            msg = await q.get()
            try:
                await self.deliver(ch, msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad message stop the channel
                log.exception("notification worker for %s failed", ch.redacted)
            finally:
                q.task_done()

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued message was delivered or given up (retries included), at most ``timeout``
        seconds of real time. True when all queues are empty and idle; False at the deadline (what is left
        is abandoned by :meth:`aclose`). Needs the workers (:meth:`start`)."""
        if not self._tasks:
            return all(q.empty() for q in self._queues.values())
        joins = [asyncio.ensure_future(q.join()) for q in self._queues.values()]
        _, pending = await asyncio.wait(joins, timeout=max(0.0, timeout))
        for fut in pending:
            fut.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return not pending

    def status(self) -> dict[str, Any]:
        """``{name: {url (redacted), tags, sent, failures, consecutive_failures, dropped, queued, last_ok,
        last_error, last_error_at}}``."""
        return {n: {**asdict(s), "queued": self._queues[n].qsize()} for n, s in self._status.items()}

    async def aclose(self) -> None:
        """Cancel workers and abandon hanging sends (threads end at their socket timeout)."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        logging.getLogger("apprise").removeFilter(self._scrubber)
