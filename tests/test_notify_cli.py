"""``gswarm notify test|url`` and ``gswarm maintenance`` through the real Typer app."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gswarm import maintenance
from tests.helpers import run_cli
from tests.test_notify_support import HttpReceiver, http_rx, smtp_rx  # noqa: F401 (fixtures)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``gswarm.cli.main(args)`` (error mapping included); returns (exit code, stdout + stderr)."""
    return lambda *args: run_cli(capsys, *args)


def test_url_helpers(cli) -> None:
    assert cli("notify", "url", "telegram", "--token", TOKEN, "--chat", "-100123") == (0, f"tgram://{TOKEN}/-100123\n")
    assert cli("notify", "url", "discord", "https://discord.com/api/webhooks/42/abc_DEF") == (0, "discord://42/abc_DEF\n")
    code, out = cli("notify", "url", "email", "--host", "smtp.example.org", "--user", "me@example.org",
                    "--password", "pw", "--to", "ops@example.org", "--tls", "ssl", "--port", "465")
    assert (code, out) == (0, "mailtos://me%40example.org:pw@smtp.example.org:465"
                              "?from=me@example.org&to=ops@example.org&mode=ssl\n")
    code, out = cli("notify", "url", "telegram", "--token", "bad", "--chat", "1")
    assert code == 2 and "BotFather" in out


def test_notify_test_reports_each_channel(cli, http_rx: HttpReceiver, smtp_rx, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    handler, port = smtp_rx
    http_rx.modes["/down"] = "fail"
    urls = [f"ops=json://{http_rx.base}/up", f"ops=json://{http_rx.base}/down",
            f"home=mailto://127.0.0.1:{port}?from=g@example.org&to=me@example.org"]
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", " ".join(urls))
    monkeypatch.setenv("GSWARM_NODE_NAME", "rig1")
    code, out = cli("notify", "test", "--json")
    rows = json.loads(out)
    assert code == 1  # one channel failed
    assert [(r["channel"], r["tags"], r["delivered"]) for r in rows] == [
        (f"json://{http_rx.base}/***", ["ops"], True), (f"json://{http_rx.base}/***", ["ops"], False),
        (f"mailto://127.0.0.1:{port}?from=g@example.org&to=me@example.org", ["home"], True)]
    assert "500" in rows[1]["error"]
    assert handler.messages[0][2]["Subject"] == "[rig1] GSwarm test message"
    http_rx.requests.clear()
    code, out = cli("notify", "test", "--tag", "home")
    assert code == 0 and out.strip().endswith("[home]  delivered") and http_rx.requests == []


def test_notify_test_without_channels_is_an_error(cli) -> None:
    code, out = cli("notify", "test")
    assert code == 2 and "GSWARM_NOTIFY_URLS" in out


def test_notify_test_hides_secrets(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", "json://gsw:Hunter2Secret@127.0.0.1:9/hook-TOKEN9876")  # port 9: refused
    code, out = cli("notify", "test", "--timeout", "2")
    assert code == 1 and out.startswith("json://***@127.0.0.1:9/***  [-]  FAILED: ")
    assert "Hunter2Secret" not in out and "TOKEN9876" not in out


def test_notify_test_reports_unloadable_url(cli, http_rx: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", f"json://{http_rx.base}/a nosuch://user:PW123456@h.example.org/x")
    code, out = cli("notify", "test")
    lines = out.strip().splitlines()
    assert code == 1 and lines[0] == f"json://{http_rx.base}/***  [-]  delivered"
    assert lines[1].startswith("(not loaded)  [-]  FAILED: notification URL nosuch://***@h.example.org/*** is not")
    assert "PW123456" not in out


def test_maintenance_commands(cli, state_dir: Path) -> None:
    code, out = cli("maintenance", "30m", "--reason", "driver update")
    until = maintenance.active_until(state_dir, time.time())
    assert code == 0 and until is not None and 1790 < until - time.time() <= 1800
    assert "no alerts, no restarts" in out
    code, out = cli("maintenance")
    assert code == 0 and out.startswith("maintenance until") and "(30 min left)" in out
    code, out = cli("maintenance", "20")  # seconds: it said "(0 min left)"
    assert code == 0 and ("(20 s left)" in out or "(19 s left)" in out), out
    assert cli("maintenance", "off") == (0, "maintenance window ended: alerts and restarts are back on\n")
    assert maintenance.active_until(state_dir, time.time()) is None
    assert cli("maintenance", "status") == (0, "no maintenance window\n")
    code, out = cli("maintenance", "soon")
    assert code == 2 and "maintenance" in out
