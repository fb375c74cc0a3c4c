"""Digest text and PNG from a store: one filled through the store service with a known day, and one
filled by a real emulated run (``gswarm run --emulated``, slow) that also notifies a local receiver."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gswarm.clock import FakeClock
from gswarm.events import (Category, EventBus, Incident, ProcessExited, ProcessStarted, ProgressUpdate, Recovery,
                           ResourceSample, RestartScheduled, Severity)
from gswarm.logs.store import StoreReader
from gswarm.notify.digest import build_digest, fmt_bytes, fmt_duration, period_name
from tests.test_notify_support import HttpReceiver, http_rx, smtp_rx  # noqa: F401 (fixtures)

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
GIB = 1024**3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def known_day(node: str = "n1") -> list:
    """24 h: 3 failures (cuda_oom ×2, SIGKILL/system_oom_killed ×1), rounds 1000→1240, hourly samples."""
    ev: list = []
    runs = [(0, 3600, 1, None, Category.CUDA_OOM), (3660, 7200, 1, None, Category.CUDA_OOM),
            (7300, 40000, None, 9, Category.SYSTEM_OOM_KILLED)]
    for i, (a, b, code, sig, cat) in enumerate(runs, start=1):
        ev.append(ProcessStarted(node, T0 + a, 100 + i, 100 + i, ("python",), "E6", "direct", i))
        ev.append(ProcessExited(node, T0 + b, 100 + i, code, sig, b - a, i))
        ev.append(Incident(node, T0 + b, cat, Recovery.RESTART, Severity.ERROR, cat.value, ("x",), "advice"))
        ev.append(RestartScheduled(node, T0 + b + 1, 30.0, cat, Recovery.RESTART, i))
    ev.append(ProcessStarted(node, T0 + 40100, 104, 104, ("python",), "E6", "direct", 4))
    for h in range(24):
        ev.append(ResourceSample(node, T0 + 1800 + h * 3600, {
            "cpu_percent": 100.0 + h, "rss_bytes": int(2 * GIB + h * 0.1 * GIB), "host_cpu_percent": 30.0 + h,
            "host_mem_percent": 50.0 + h, "disk_free_bytes": (40 - h) * GIB, "gpu": [{"temperature_celsius": 60 + h}]}))
    for k in range(25):
        ev.append(ProgressUpdate(node, T0 + 100 + k * 3579, "round", round=1000 + 10 * k, advanced=True))
    return sorted(ev, key=lambda e: e.ts)


async def fill_through_store_service(db: Path, events: list) -> None:
    from gswarm.logs.store import StoreService

    bus = EventBus()
    svc = StoreService(bus, FakeClock(T0), db, retention_days=3650)
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    for e in events:
        bus.publish(e)
    while svc.written < len(events):
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


EXPECTED = """\
Period:    2026-11-28 12:00 UTC → 2026-11-29 12:00 UTC
Uptime:    99.7 % (23 h 56 min running of 1 d 0 h observed)
Restarts:  3 — cuda oom ×2, system oom killed ×1 (MTBF 7 h 59 min)
Rounds:    25 taken part (1000 → 1240, 1.04/h)
Incidents: cuda oom ×2, system oom killed ×1
Peaks:     CPU 123 % · RSS 4.3 GiB · host RAM 73 % · disk free min 17.0 GiB · GPU 83 °C"""


async def test_digest_text_and_png_from_store_service(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    await fill_through_store_service(db, known_day())
    reader = StoreReader(db)
    d = build_digest(reader, "n1", T0, T0 + 86400, tmp_path / "chart.png", tz=UTC)
    reader.close()
    assert d.title == "[n1] GSwarm daily digest"
    assert d.text == EXPECTED
    s = d.summary.to_dict()
    assert (s["restarts_by_cause"], s["failures"], s["rounds"], s["first_round"], s["last_round"]) == (
        {"cuda_oom": 2, "system_oom_killed": 1}, 3, 25, 1000, 1240)
    assert s["restarts_by_day"] == {"2026-11-28": 3}
    data = d.png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000
    msg = d.message()
    assert (msg.kind, msg.force, msg.attach) == ("digest", True, tmp_path / "chart.png")


async def test_digest_by_email_with_png(tmp_path: Path, smtp_rx) -> None:  # noqa: F811
    from gswarm.notify.channels import Channel, ChannelConfig
    from gswarm.notify.dispatch import Dispatcher
    from gswarm.notify.urls import email_url

    handler, port = smtp_rx
    db = tmp_path / "gswarm.db"
    await fill_through_store_service(db, known_day())
    reader = StoreReader(db)
    d = build_digest(reader, "n1", T0, T0 + 86400, tmp_path / "digest-n1.png", tz=UTC)
    reader.close()
    ch = Channel(ChannelConfig(url=email_url("127.0.0.1", "ops@example.org", port=port, tls="none",
                                             sender="gswarm@example.org"), kinds=["needs_you"]))
    disp = Dispatcher([ch], timeout=10, retries=0)
    try:
        assert await disp.send_now(d.message()) == {}  # this channel does not take digests
        ch.config.kinds = None
        assert await disp.send_now(d.message()) == {ch.name: (True, "")}
    finally:
        await disp.aclose()
    ((_, rcpts, msg),) = handler.messages
    assert rcpts == ["ops@example.org"] and msg["Subject"] == "[n1] GSwarm daily digest"
    assert [ln.rstrip() for ln in msg.get_body(("plain",)).get_content().strip().splitlines()] == EXPECTED.splitlines()
    (att,) = list(msg.iter_attachments())
    assert (att.get_content_type(), att.get_filename()) == ("image/png", "digest-n1.png")
    assert att.get_content() == d.png.read_bytes()


async def test_weekly_digest_lists_days_and_empty_store(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    await fill_through_store_service(db, known_day())
    reader = StoreReader(db)
    week = build_digest(reader, "n1", T0 - 6 * 86400, T0 + 86400, tz=UTC)
    empty = build_digest(reader, "nobody", T0, T0 + 86400, tz=UTC)
    reader.close()
    assert week.title == "[n1] GSwarm weekly digest" and week.png is None
    assert week.text.splitlines()[-1] == "Per day:   2026-11-28 ×3"
    assert "Uptime:    99.7 %" in week.text  # observed from the first fact, not the whole week
    assert empty.text.splitlines()[1:] == [
        "Uptime:    - (0 min running of 0 min observed)", "Restarts:  0 — none (MTBF -)",
        "Rounds:    no rounds seen", "Incidents: none", "Peaks:     no samples"]


def test_formatting_helpers() -> None:
    assert [fmt_duration(x) for x in (None, 59, 3600 * 5 + 50 * 60, 86400 * 3 + 3600 * 4)] == [
        "-", "1 min", "5 h 50 min", "3 d 4 h"]
    assert [period_name(0, s) for s in (86400, 7 * 86400, 3600)] == ["daily", "weekly", "report"]
    assert [fmt_bytes(x) for x in (GIB, 4.34 * GIB, 50 * 1024**2)] == ["1.0 GiB", "4.3 GiB", "50 MiB"]


async def test_report_cli_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gswarm.cli import build_app

    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    now = datetime.now(UTC).timestamp()
    shifted = [type(e)(**{**e.__dict__, "ts": e.ts - (T0 + 86400) + now}) for e in known_day("default")]
    await fill_through_store_service(state / "gswarm.db", shifted)
    png = tmp_path / "out" / "r.png"
    png.parent.mkdir()  # report reads: it creates no folder (#19)
    res = CliRunner().invoke(build_app(), ["report", "--since", "24h", "--state-dir", str(state), "--json",
                                           "--png", str(png)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["title"] == "[default] GSwarm daily digest"
    assert out["summary"]["restarts_by_cause"] == {"cuda_oom": 2, "system_oom_killed": 1}
    assert out["png"] == str(png) and png.read_bytes()[:8] == PNG_MAGIC
    res = CliRunner().invoke(build_app(), ["report", "--since", "2x", "--state-dir", str(state)])
    assert res.exit_code != 0


async def test_report_send_attaches_chart(tmp_path: Path, http_rx: HttpReceiver,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from gswarm.cli import build_app

    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    now = datetime.now(UTC).timestamp()
    await fill_through_store_service(state / "gswarm.db", [
        type(e)(**{**e.__dict__, "ts": e.ts - (T0 + 86400) + now}) for e in known_day("rig")])
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", f"json://{http_rx.base}/digest")
    res = await asyncio.to_thread(CliRunner().invoke, build_app(),
                                  ["report", "--since", "24h", "--node", "rig", "--state-dir", str(state), "--send"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "[rig] GSwarm daily digest"
    assert res.output.splitlines()[-1] == f"sent to json://{http_rx.base}/***: delivered"
    (req,) = http_rx.requests
    body = req.json()
    assert body["title"] == "[rig] GSwarm daily digest" and "Restarts:  3 — cuda oom ×2" in body["message"]
    (att,) = body["attachments"]
    assert att["filename"] == "digest.png" and att["mimetype"] == "image/png"


@pytest.mark.slow
def test_digest_from_emulated_run_and_live_alerts(tmp_path: Path, http_rx: HttpReceiver) -> None:  # noqa: F811
    """Real supervisor + emulator (E6, CUDA OOM on the first start), real store, real notify service."""
    state = tmp_path / "state"
    env = {**os.environ, "GSWARM_STATE_DIR": str(state), "GSWARM_SAMPLE_INTERVAL": "0.5",
           "GSWARM_NOTIFY_URLS": f"json://{http_rx.base}/run"}
    cmd = [sys.executable, "-m", "gswarm", "run", "--emulated", "--emu-pace", "0.1", "--emu-faults",
           "crash:cuda_oom@1#1", "--duration", "10s", "--no-api", "--backoff-initial", "0.5"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    titles = [r.json()["title"] for r in http_rx.requests]
    assert titles[:2] == ["[default] crashed: cuda oom", "[default] recovered"], proc.stderr[-3000:]
    crash = http_rx.requests[0].json()["message"]
    assert crash.startswith("Cause: cuda oom (rule cuda_oom, recovery reduce_model)\nExit: exit code 1 after")
    assert "What to do: The GPU ran out of memory" in crash
    png = tmp_path / "emu.png"
    res = CliRunner().invoke(__import__("gswarm.cli", fromlist=["build_app"]).build_app(),
                             ["report", "--since", "1h", "--state-dir", str(state), "--json", "--png", str(png)])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)["summary"]
    assert (s["restarts"], s["restarts_by_cause"], s["failures"]) == (1, {"cuda_oom": 1}, 1)
    assert s["incidents_by_category"] == {"cuda_oom": 1}
    assert s["rounds"] >= 2 and 50.0 < s["uptime_pct"] <= 100.0
    assert s["peaks"]["cpu_percent"] is not None and s["peaks"]["rss_bytes"] > 0
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_digest_mentions_availability_when_the_node_was_stopped_on_purpose() -> None:
    from gswarm.notify.digest import render_text
    from gswarm.notify.history import Summary

    s = Summary("n1", T0, T0 + 86400, observed_s=86400.0, running_s=43200.0, uptime_pct=50.0, availability_pct=99.9)
    line = next(x for x in render_text(s, tz=timezone.utc).splitlines() if x.startswith("Uptime:"))
    assert line == "Uptime:    50.0 % (12 h 0 min running of 1 d 0 h observed); 99.9 % while GSwarm kept it up"
    s.availability_pct = 50.0
    assert "while GSwarm" not in render_text(s, tz=timezone.utc)
