"""Delivery through real protocols to receivers on 127.0.0.1 (HTTP JSON, Telegram/Discord stand-ins, SMTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gswarm.events import Severity
from gswarm.notify.channels import Channel, ChannelConfig
from gswarm.notify.dispatch import Dispatcher
from gswarm.notify.rules import Message
from gswarm.notify.urls import email_url, telegram_url
from tests.test_notify_support import HttpReceiver, http_rx, smtp_rx  # noqa: F401 (fixtures)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_json_channel_posts_title_body_type(http_rx: HttpReceiver) -> None:
    ch = Channel(ChannelConfig(url=f"json://{http_rx.base}/hook"))
    assert ch.send("[n1] crashed: cuda oom", "Cause: cuda oom", Severity.ERROR) == (True, "")
    (req,) = http_rx.requests
    assert req.path == "/hook"
    body = req.json()
    assert (body["title"], body["message"], body["type"]) == ("[n1] crashed: cuda oom", "Cause: cuda oom", "failure")


def test_failing_channel_reports_redacted_error(http_rx: HttpReceiver) -> None:
    http_rx.modes["/fail"] = "fail"
    ch = Channel(ChannelConfig(url=f"json://{http_rx.base}/fail?token=SECRET123"))
    ok, err = ch.send("t", "b", Severity.WARNING)
    assert ok is False
    assert "500" in err and "SECRET123" not in err
    assert ch.redacted == f"json://{http_rx.base}/***?token=***"


def test_telegram_bot_api_stand_in(http_rx: HttpReceiver) -> None:
    """Apprise's Telegram plugin posts to ``notify_url`` + token; we point it at the local stand-in."""
    ch = Channel(ChannelConfig(url=telegram_url(TOKEN, "987654321")))
    ch.plugin.notify_url = f"http://{http_rx.base}/bot"
    assert ch.send("[n1] needs you: identity taken", "Move swarm.pem back", Severity.CRITICAL) == (True, "")
    (req,) = http_rx.requests
    assert req.path == f"/bot{TOKEN}/sendMessage"
    body = req.json()
    assert body["chat_id"] == 987654321
    assert body["text"] == "<b>[n1] needs you: identity taken</b>\r\nMove swarm.pem back"


def test_telegram_digest_photo_stand_in(http_rx: HttpReceiver, tmp_path: Path) -> None:
    png = tmp_path / "digest.png"
    png.write_bytes(PNG)
    ch = Channel(ChannelConfig(url=telegram_url(TOKEN, "987654321")))
    ch.plugin.notify_url = f"http://{http_rx.base}/bot"
    assert ch.send("[n1] GSwarm daily digest", "Uptime: 99.0 %", Severity.INFO, attach=png) == (True, "")
    paths = [r.path for r in http_rx.requests]
    assert paths[0] == f"/bot{TOKEN}/sendPhoto"
    upload = http_rx.requests[0]
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'filename="digest.png"' in upload.body and PNG in upload.body
    assert b"987654321" in upload.body


def test_discord_webhook_stand_in(http_rx: HttpReceiver) -> None:
    ch = Channel(ChannelConfig(url="discord://417429632418316298/WebHookToken_x"))
    ch.plugin.notify_url = f"http://{http_rx.base}/api/webhooks"
    assert ch.send("[n1] recovered", "Progress resumed.", Severity.WARNING) == (True, "")
    (req,) = http_rx.requests
    assert req.path == "/api/webhooks/417429632418316298/WebHookToken_x"
    assert req.json()["content"] == "[n1] recovered\r\nProgress resumed."


def test_email_via_smtp_receiver(smtp_rx) -> None:  # noqa: F811
    handler, port = smtp_rx
    ch = Channel(ChannelConfig(url=email_url("127.0.0.1", "ops@example.org", port=port, tls="none",
                                             sender="gswarm@example.org")))
    assert ch.send("[n1] disk low: 3.0 GiB free", "Free space now.", Severity.WARNING) == (True, "")
    ((mail_from, rcpts, msg),) = handler.messages
    assert (mail_from, rcpts) == ("gswarm@example.org", ["ops@example.org"])
    assert msg["Subject"] == "[n1] disk low: 3.0 GiB free"
    assert msg.get_body(("plain",)).get_content().strip() == "Free space now."


def test_email_digest_carries_png_attachment(smtp_rx, tmp_path: Path) -> None:  # noqa: F811
    handler, port = smtp_rx
    png = tmp_path / "digest.png"
    png.write_bytes(PNG)
    ch = Channel(ChannelConfig(url=email_url("127.0.0.1", "ops@example.org", port=port, tls="none",
                                             sender="gswarm@example.org")))
    assert ch.send("[n1] GSwarm daily digest", "Uptime: 99.0 %", Severity.INFO, attach=png) == (True, "")
    ((_, _, msg),) = handler.messages
    atts = list(msg.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in atts] == [("image/png", "digest.png")]
    assert atts[0].get_content() == PNG


async def test_dispatcher_send_now_reports_per_channel(http_rx: HttpReceiver) -> None:
    http_rx.modes["/bad"] = "fail"
    good = Channel(ChannelConfig(url=f"json://{http_rx.base}/good", tags=["ops"]), index=0)
    bad = Channel(ChannelConfig(url=f"json://{http_rx.base}/bad", tags=["ops"]), index=1)
    other = Channel(ChannelConfig(url=f"json://{http_rx.base}/other", tags=["home"]), index=2)
    d = Dispatcher([good, bad, other], timeout=5, retries=0)
    try:
        res = await d.send_now(Message("test", Severity.INFO, "t", "b", force=True), tag="ops")
    finally:
        await d.aclose()
    assert {k: v[0] for k, v in res.items()} == {good.name: True, bad.name: False}
    st = d.status()
    assert (st[good.name]["sent"], st[good.name]["failures"]) == (1, 0)
    assert (st[bad.name]["sent"], st[bad.name]["failures"], st[bad.name]["url"]) == (0, 1, f"json://{http_rx.base}/***")
    assert sorted(json.loads(r.body)["title"] for r in http_rx.requests) == ["t", "t"]


def _self_signed(tmp_path: Path):
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=30)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.slow
def test_email_starttls_with_login(tmp_path: Path) -> None:
    """mailtos://…?mode=starttls: TLS upgrade and AUTH against aiosmtpd (self-signed, so verify=no)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.test_notify_support import _free_port, _SmtpHandler

    logins: list[tuple[bytes, bytes]] = []

    def auth(server, session, envelope, mechanism, data) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cr3t:pw")

    handler, port = _SmtpHandler(), _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, tls_context=_self_signed(tmp_path),
                     require_starttls=True, authenticator=auth, auth_required=True)
    ctl.start()
    try:
        url = email_url("127.0.0.1", "ops@example.org", port=port, user="gswarm@example.org", password="s3cr3t:pw")
        assert url.startswith("mailtos://") and url.endswith("&mode=starttls")
        ch = Channel(ChannelConfig(url=url + "&verify=no"))
        assert ch.send("[n1] needs you: login expired", "Log in again.", Severity.CRITICAL) == (True, "")
        bad = Channel(ChannelConfig(url=url.replace("s3cr3t", "wrong") + "&verify=no"))
        bad.set_timeout(1.0)  # aiosmtpd leaves the rejected session open; Apprise waits for its QUIT
        ok, err = bad.send("x", "y", Severity.CRITICAL)
    finally:
        ctl.stop()
    assert logins == [(b"gswarm@example.org", b"s3cr3t:pw"), (b"gswarm@example.org", b"wrong:pw")]
    ((mail_from, rcpts, msg),) = handler.messages
    assert (mail_from, rcpts, msg["Subject"]) == ("gswarm@example.org", ["ops@example.org"],
                                                  "[n1] needs you: login expired")
    assert ok is False and "wrong" not in err


async def test_retry_with_backoff_on_the_injected_clock(http_rx: HttpReceiver) -> None:
    import asyncio

    from gswarm.clock import FakeClock

    http_rx.modes["/flaky"] = "flaky"
    clock = FakeClock(1_800_000_000.0)
    ch = Channel(ChannelConfig(url=f"json://{http_rx.base}/flaky"))
    d = Dispatcher([ch], clock, timeout=5, retries=2, backoff=30.0)
    d.start()
    try:
        assert d.submit(Message("crashed", Severity.ERROR, "t", "b")) == 1
        while len(http_rx.requests) < 1 or clock.pending_sleeps != [30.0]:
            await asyncio.sleep(0.01)  # first attempt failed; the retry waits 30 s of the fake clock
        st = d.status()[ch.name]
        assert (st["sent"], st["failures"], st["last_error_at"]) == (0, 1, 1_800_000_000.0)
        clock.advance(29.9)
        await asyncio.sleep(0.1)
        assert len(http_rx.requests) == 1
        clock.advance(0.1)
        while d.status()[ch.name]["sent"] == 0:
            await asyncio.sleep(0.01)
    finally:
        await d.aclose()
    st = d.status()[ch.name]
    assert (st["sent"], st["failures"], st["consecutive_failures"], st["last_ok"]) == (1, 1, 0, 1_800_000_030.0)
    assert [r.path for r in http_rx.requests] == ["/flaky", "/flaky"]
