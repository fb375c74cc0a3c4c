"""systemd's notify protocol without a dependency: datagrams to ``$NOTIFY_SOCKET`` (``man sd_notify``).

``NOTIFY_SOCKET`` is a filesystem path or, starting with ``@``, an abstract-namespace name (the ``@`` becomes
a NUL byte). Messages are ``KEY=value`` lines: ``READY=1``, ``STATUS=…``, ``STOPPING=1``, ``WATCHDOG=1``.
``WATCHDOG_USEC`` (microseconds) asks for pings at least that often; systemd sets ``WATCHDOG_PID`` too and
a process whose pid differs must not ping (the variable was inherited). systemd arms the watchdog only
after READY ("The watchdog is activated when the start-up is completed", systemd.service(5)).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Mapping

log = logging.getLogger(__name__)


def address(env: Mapping[str, str] | None = None) -> str | bytes | None:
    """The socket address from ``NOTIFY_SOCKET`` (abstract names as bytes with a leading NUL), or None."""
    raw = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock: and relative paths are not supported (systemd uses absolute or abstract)


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between pings: half of ``WATCHDOG_USEC`` (None when unset, invalid, 0, or meant for another pid)."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    wpid = env.get("WATCHDOG_PID")
    if usec <= 0 or (wpid and wpid.strip() != str(pid if pid is not None else os.getpid())):
        return None
    return usec / 2_000_000


class Notifier:
    """Sends notify messages to ``addr`` (see :func:`address`); every failure is logged once at debug and
    swallowed (systemd being gone must never hurt the node)."""

    def __init__(self, addr: str | bytes) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setblocking(False)
        self.sent: list[str] = []  # last messages, for status and tests (bounded)

    def send(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines (keys upper-cased; newlines in values become spaces). True when sent."""
        text = "\n".join(f"{k.upper()}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            self.sock.sendto(text.encode("utf-8", "replace"), self.addr)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", text[:60], exc)
            return False
        self.sent = [*self.sent[-19:], text]
        return True

    def close(self) -> None:
        self.sock.close()
