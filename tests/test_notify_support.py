"""Local receivers for notification tests (HTTP and SMTP on 127.0.0.1) and their self-checks.

Other ``test_notify_*`` modules import the fixtures from here.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records requests; ``mode`` per path prefix: ok (200), fail (500), flaky (500 the first time, then 200),
    hang (never answers until ``release`` is set)."""

    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def wait(self, n: int, timeout: float = 5.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)


def _handler(rx: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(n)
            mode = next((m for p, m in rx.modes.items() if self.path.startswith(p)), "ok")
            rx.requests.append(Request("POST", self.path, dict(self.headers), body))
            rx.arrived.set()
            if mode == "hang":
                rx.release.wait(30)
                return
            first = sum(r.path == self.path for r in rx.requests) == 1
            code = 500 if mode == "fail" or (mode == "flaky" and first) else 200
            payload = b'{"ok": true, "result": {"message_id": 1}}' if code == 200 else b'{"ok": false}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return H


@pytest.fixture
def http_rx() -> Iterator[HttpReceiver]:
    """An HTTP receiver on 127.0.0.1 (random port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    rx = HttpReceiver(server)
    server.RequestHandlerClass = _handler(rx)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield rx
    rx.release.set()
    server.shutdown()
    server.server_close()


class _SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_rx() -> Iterator[tuple[_SmtpHandler, int]]:
    """An aiosmtpd SMTP server on 127.0.0.1; yields (handler with .messages, port)."""
    from aiosmtpd.controller import Controller

    handler = _SmtpHandler()
    port = _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    yield handler, port
    ctl.stop()


def test_http_receiver_records_and_fails_on_request(http_rx: HttpReceiver) -> None:
    http_rx.modes["/bad"] = "fail"
    assert httpx.post(f"http://{http_rx.base}/x", content=b"hi").status_code == 200
    assert httpx.post(f"http://{http_rx.base}/bad", content=b"no").status_code == 500
    assert [(r.path, r.body) for r in http_rx.requests] == [("/x", b"hi"), ("/bad", b"no")]


def test_smtp_receiver_receives(smtp_rx: tuple[_SmtpHandler, int]) -> None:
    import smtplib

    handler, port = smtp_rx
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
        s.sendmail("a@example.org", ["b@example.org"], "Subject: hi\r\n\r\nbody\r\n")
    assert handler.messages[0][0] == "a@example.org"
    assert handler.messages[0][2]["Subject"] == "hi"
