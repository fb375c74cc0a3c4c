"""Daemon control end to end (issue #14): ``gswarm stop|start|restart|reload`` from other processes against a
running ``gswarm run --emulated``; the dead-man heartbeat seen by a local HTTP receiver."""

from __future__ import annotations

import http.server
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from gswarm.daemon.client import NotRunning, request
from tests.helpers import reap_leftover, wait_for

pytestmark = pytest.mark.slow


class Receiver:
    """An HTTP server on 127.0.0.1 recording (method, path, body) of every request."""

    def __init__(self) -> None:
        got = self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                got.append((self.command, self.path, self.rfile.read(n).decode()))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def env(xdg: Path | None = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    e["XDG_CONFIG_HOME"] = str(xdg or tempfile.mkdtemp(prefix="gsx-"))  # no service manifest of the machine
    e["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="gsy-")  # nor its default state dir
    return e


def start_run(sdir: Path, cfg: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gswarm", "run", "--emulated", "--no-api", "--emu-pace", "0.05",
                             "--state-dir", str(sdir), "--config-file", str(cfg), "--duration", "120", *extra],
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cli(sdir: Path | None, *args: str, xdg: Path | None = None) -> tuple[int, str]:
    where = ["--state-dir", str(sdir)] if sdir else []
    p = subprocess.run([sys.executable, "-m", "gswarm", *args, *where], env=env(xdg),
                       capture_output=True, text=True, timeout=90)
    return p.returncode, " ".join((p.stdout + p.stderr).split())


def running(sdir: Path) -> dict:
    return request(sdir, "status")["snapshot"]


def node_running(sdir: Path, proc: subprocess.Popen) -> bool:
    """True once the supervisor answers with a RUNNING node; raises when ``gswarm run`` ended."""
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
    try:
        return running(sdir)["state"] == "RUNNING"
    except NotRunning:  # not serving yet (the socket file appears at bind, before listen)
        return False


def test_stop_start_restart_from_another_process_are_requested_not_failures(tmp_path: Path) -> None:
    sdir = Path(tempfile.mkdtemp(prefix="gsc-")) / "st"
    cfg = tmp_path / "c.toml"
    cfg.write_text("stop_timeout = 5\n")
    proc = start_run(sdir, cfg)
    try:
        wait_for(lambda: node_running(sdir, proc))
        assert oct((sdir / "control.sock").stat().st_mode & 0o777) == "0o600"
        first_pid = running(sdir)["pid"]
        assert cli(sdir, "stop") == (0, "stop done: node default is STOPPED")
        assert running(sdir)["state"] == "STOPPED" and proc.poll() is None  # the supervisor stays
        assert cli(sdir, "stop") == (1, "node default is already STOPPED; there is nothing to stop")
        assert cli(sdir, "start", "default") == (0, "start done: node default is RUNNING")
        second_pid = running(sdir)["pid"]
        xdg = tmp_path / "xdg"  # the installed service's manifest: commands without --state-dir find it
        (xdg / "gswarm").mkdir(parents=True)
        (xdg / "gswarm" / "service.json").write_text(json.dumps({"name": "gswarm", "state_dir": str(sdir)}))
        assert cli(None, "restart", xdg=xdg) == (0, "restart done: node default is RUNNING")
        code, out = cli(None, "status", "--json", xdg=xdg)
        assert code == 0 and json.loads(out)["state"] == "RUNNING"
        assert cli(None, "restart")[0] == 1  # no manifest: the default state dir has no supervisor
        third_pid = running(sdir)["pid"]
        assert len({first_pid, second_pid, third_pid}) == 3
        assert cli(sdir, "stop", "other")[0] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        reap_leftover(proc)
    db = sqlite3.connect(sdir / "gswarm.db")
    states = [m for (m,) in db.execute("SELECT message FROM events WHERE kind='state' AND state='STOPPED' ORDER BY id")]
    assert states[:2] == ["stop requested by cli", "restart requested by cli"]
    assert db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM events WHERE kind='restart'").fetchone()[0] == 0  # no backoff restarts
    code, out = cli(sdir, "stop")
    assert code == 1
    assert f"no gswarm supervisor is running for state dir {sdir}; start one with `gswarm run`" in out
    with pytest.raises(NotRunning):
        request(sdir, "ping")


def test_reload_applies_a_notification_setting_without_restarting_the_node(tmp_path: Path) -> None:
    rec = Receiver()
    sdir = Path(tempfile.mkdtemp(prefix="gsr-")) / "st"
    cfg = tmp_path / "c.toml"
    url = rec.url.replace("http://", "json://") + "/hook"
    cfg.write_text(f'notify_urls = ["{url}"]\nnotify_min_severity = "critical"\nnotify_digest = "off"\n')
    proc = start_run(sdir, cfg)
    try:
        wait_for(lambda: node_running(sdir, proc))
        pid = running(sdir)["pid"]
        cfg.write_text(f'notify_urls = ["{url}"]\nnotify_min_severity = "info"\nnotify_digest = "off"\napi_port = 9\n')
        code, out = cli(sdir, "reload")
        assert code == 0
        assert out == ("applied now: notify_min_severity; need a restart of gswarm itself "
                       "(e.g. `systemctl --user restart gswarm`): api_port")
        assert running(sdir)["pid"] == pid and running(sdir)["restarts"] == 0
        assert rec.got == []  # "started supervising" (info) was below "critical"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        reap_leftover(proc)
        rec.close()
    bodies = [json.loads(b) for m, p, b in rec.got if m == "POST"]
    assert [(b["title"], b["message"]) for b in bodies] == [  # info passes now
        ("[default] GSwarm stopped supervising", "GSwarm stopped supervising node default. The node is no longer watched or restarted.")]


def test_heartbeat_pings_while_healthy_then_fail_with_the_cause(tmp_path: Path) -> None:
    rec = Receiver()
    sdir = Path(tempfile.mkdtemp(prefix="gsh-")) / "st"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'heartbeat_url = "{rec.url}/hb"\nheartbeat_interval = 0.1\nbackoff_initial = 0.1\n'
                   'backoff_jitter = false\ncrash_loop_max = 2\n')
    proc = start_run(sdir, cfg, "--emu-faults", "crash:trainer_bug_current_batch@0.6")
    try:
        assert proc.wait(60) == 6  # NodeFatal: gave up on the crash loop
    finally:
        reap_leftover(proc)
    n = len(rec.got)
    time.sleep(0.3)
    rec.close()
    assert len(rec.got) == n  # GSwarm is gone: nothing more
    gets = [g for g in rec.got if g[0] == "GET"]
    assert len(gets) >= 3 and {g[1] for g in gets} == {"/hb"}
    assert rec.got[-1][:2] == ("POST", "/hb/fail")
    assert rec.got[-1][2] == ("node default gave up (FATAL): crash loop: 2 failures within 600s "
                              "(last: trainer_bug_current_batch); cause trainer_bug_current_batch")
