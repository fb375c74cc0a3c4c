"""``gswarm diagnose`` and ``gswarm bundle`` through Typer's CliRunner (own app: only this area's commands)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gswarm.cli import diagnose
from gswarm.cli._diag_bundle import line_time, recent_lines
from gswarm.cli._diag_scrub import scrub
from gswarm.errors import ConfigError

DATA = Path(__file__).resolve().parent / "data" / "failures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    diagnose.register(a)
    return a


def run(app: typer.Typer, *args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_diagnose_json_corpus_file(app: typer.Typer) -> None:
    res = run(app, "diagnose", str(DATA / "022-peer-id-already-registered-aa24.txt"), "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert {k: d[k] for k in ("category", "recovery", "severity", "rule_id")} == {
        "category": "peer_id_already_registered", "recovery": "stop_and_alert", "severity": "critical",
        "rule_id": "peer_id_already_registered"}
    assert d["evidence"] == ["Failed to call registerPeer: PeerIdAlreadyRegistered",  # the deciding marker shown too
                             "Smart contract account reverted with error: AA24 signature error",
                             "Failed to call submitReward: InvalidRoundNumber"]
    assert d["advice"].startswith("The peer id in swarm.pem is registered on-chain to a different account")
    assert (d["action"]["action"], d["action"]["alert"]) == ("stop", True)


def test_diagnose_json_clean_log(app: typer.Typer, tmp_path: Path) -> None:
    log = tmp_path / "swarm_launcher.log"
    log.write_text("[2025-07-27 08:05:06,285][genrl.logging_utils.global_defs][INFO] - Starting round: 13144/1000000.\n"
                   "[2025-07-27 08:05:07,285][genrl.logging_utils.global_defs][INFO] - 🐝 Joining round: 13144\n", encoding="utf-8")
    d = json.loads(run(app, "diagnose", str(log), "--json", "--generation", "e4").output)
    assert d == {"category": "none", "recovery": "none", "severity": "info", "rule_id": "", "evidence": [],
                 "advice": "No failure found in this log.", "action": {"action": "none"}}


def test_diagnose_text_stdin_and_invalid_utf8(app: typer.Typer, tmp_path: Path) -> None:
    res = run(app, "diagnose", "-", input="Jun 07 [INFO] ok\nRuntimeError: DHTNode bootstrap failed: none of the initial_peers responded to a ping.\n")
    assert res.exit_code == 0
    assert "category: dht_bootstrap_ping_failed" in res.output and "GSwarm would: restart after 180 s; alert" in res.output
    raw = tmp_path / "console.log"
    raw.write_bytes(b"\xff\xfe garbage \x80\n\x1b[31m./run_rl_swarm.sh: line 270: python: command not found\x1b[0m\r\n")
    d = json.loads(run(app, "diagnose", str(raw), "--json").output)
    assert (d["category"], d["recovery"], d["action"]["action"]) == ("missing_binary", "stop_and_alert", "stop")
    assert d["evidence"] == ["./run_rl_swarm.sh: line 270: python: command not found"]


def test_diagnose_capture_file_prefix(app: typer.Typer, tmp_path: Path) -> None:
    cap = tmp_path / "output.log"
    cap.write_text("2026-11-29T15:33:17.123456Z 4242 > Traceback (most recent call last):\n"
                   "2026-11-29T15:33:17.123456Z 4242 >   File \"x.py\", line 3, in <module>\n"
                   "2026-11-29T15:33:17.123456Z 4242 > ValueError: expected sequence of length 2 at dim 1 (got 1)\n",
                   encoding="utf-8")
    d = json.loads(run(app, "diagnose", str(cap), "--json").output)
    assert (d["category"], d["rule_id"], d["evidence"]) == ("unknown_crash", "struct_unknown_exception", [
        # #17: the structural fallback (was exception_line) shows the raising frame with the final exception
        'File "x.py", line 3, in <module>', "ValueError: expected sequence of length 2 at dim 1 (got 1)"])


def test_diagnose_errors(app: typer.Typer, tmp_path: Path) -> None:
    res = run(app, "diagnose", str(tmp_path / "missing.log"))
    assert isinstance(res.exception, ConfigError) and res.exception.exit_code == 2
    assert "does not exist" in str(res.exception)
    res = run(app, "diagnose", str(DATA / "001-cuda-oom-backward-rtx4070ti.txt"), "--generation", "E9")
    assert isinstance(res.exception, ConfigError) and "--generation" in str(res.exception)


def test_diagnose_console_script_exit_code(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("gswarm")
    res = subprocess.run([str(exe), "diagnose", str(tmp_path / "nope.log")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "does not exist" in " ".join(res.stderr.split())


SECRETS = ("hf_AbCdEfGhIjKlMnOpQrStUv123456", "s3cr3t-bearer-token-value", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
           "123456789:AAE-bot-token-secret", "my-api-token-0123456789", "deadbeef" * 8)


def make_state(tmp_path: Path, now: float) -> tuple[Path, Path]:
    state = tmp_path / "state"
    logs = state / "logs" / "default"
    logs.mkdir(parents=True)
    old = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 7200))
    new = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60))
    (logs / "output.log").write_text(
        f"{old}.000001Z 11 > OLD LINE from two hours ago\n"
        f"{new}.000001Z 12 > RECENT LINE torch.OutOfMemoryError: CUDA out of memory\n"
        f"{new}.000002Z 12 > Enter your Hugging Face access token: {SECRETS[0]}\n"
        f"{new}.000003Z 12 > Authorization: Bearer {SECRETS[1]}\n"
        f"{new}.000004Z 12 > -----BEGIN PRIVATE KEY-----\n{SECRETS[2]}\n-----END PRIVATE KEY-----\n"
        f"{new}.000005Z 12 > \"privateKey\": \"0x{SECRETS[5]}\"\n", encoding="utf-8")
    (state / "api_token").write_text(SECRETS[4] + "\n", encoding="utf-8")
    conn = sqlite3.connect(state / "gswarm.db")
    conn.executescript(
        "CREATE TABLE runs(id INTEGER PRIMARY KEY, node TEXT, started_at REAL, stopped_at REAL, pid INT, generation TEXT, mode TEXT, exit_code INT, signal INT, cause TEXT);"
        "CREATE TABLE events(id INTEGER PRIMARY KEY, node TEXT, ts REAL, kind TEXT, state TEXT, message TEXT, data TEXT);"
        "CREATE TABLE incidents(id INTEGER PRIMARY KEY, node TEXT, ts REAL, category TEXT, recovery TEXT, severity TEXT, rule_id TEXT, evidence TEXT, advice TEXT);")
    conn.execute("INSERT INTO runs VALUES (1,'default',?,?,12,'E4','direct',NULL,9,'system_oom_killed')", (now - 600, now - 60))
    conn.execute("INSERT INTO events VALUES (1,'default',?,'restart','BACKOFF','cuda_oom: restart with backoff','{}')", (now - 59,))
    conn.execute("INSERT INTO incidents VALUES (1,'default',?,'cuda_oom','reduce_model','error','cuda_oom','[]','x')", (now - 60,))
    conn.commit()
    conn.close()
    checkout = tmp_path / "rl-swarm"
    (checkout / "logs").mkdir(parents=True)
    (checkout / "logs" / "swarm_launcher.log").write_text(
        "[2025-01-01 00:00:00,000][genrl.logging_utils.global_defs][INFO] - ancient line\n", encoding="utf-8")
    return state, checkout


def test_bundle_contents_scrubbed_and_private(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    state, checkout = make_state(tmp_path, now)
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", f"tgram://{SECRETS[3]}/987654")
    monkeypatch.setenv("GSWARM_HF_TOKEN", SECRETS[0])
    out = tmp_path / "b.tar.gz"
    res = run(app, "bundle", "--minutes", "30", "--output", str(out), "--state-dir", str(state), "--rl-swarm-dir", str(checkout))
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with tarfile.open(out) as tar:
        names = sorted(tar.getnames())
        texts = {n: tar.extractfile(n).read().decode() for n in names}
    assert names == ["README.txt", "config.json", "doctor.json", "history.json", "logs/default/output.log",
                     "rl-swarm-logs/swarm_launcher.log", "versions.json"]
    blob = "\n".join(texts.values())
    for secret in SECRETS:
        assert secret not in blob, secret
    out_log = texts["logs/default/output.log"]
    assert "RECENT LINE" in out_log and "OLD LINE" not in out_log
    assert "ancient line" not in texts["rl-swarm-logs/swarm_launcher.log"]
    hist = json.loads(texts["history.json"])
    assert [r["cause"] for r in hist["runs"]] == ["system_oom_killed"] and hist["events"][0]["kind"] == "restart"
    assert hist["incidents"][0]["category"] == "cuda_oom"
    assert json.loads(texts["config.json"])["settings"]["hf_token"] == "***"
    versions = json.loads(texts["versions.json"])
    assert {"os", "python", "gswarm", "torch", "nvidia", "rl_swarm_commit", "generation"} <= set(versions)


def test_bundle_tolerates_empty_state(tmp_path: Path) -> None:
    from gswarm.config import Settings

    state = tmp_path / "empty"
    state.mkdir()
    path = diagnose.write_bundle(Settings(rl_swarm_dir=tmp_path), state, 5, tmp_path / "x.tar.gz", time.time())
    with tarfile.open(path) as tar:
        hist = json.loads(tar.extractfile("history.json").read())
    assert "does not exist" in hist["note"]


def test_scrub_patterns() -> None:
    text = ("HUGGINGFACE_ACCESS_TOKEN=hf_abcdefgh12345 url=https://user:pa55@proxy.example:8080 "
            "discord://1234/abcd-token ok=hf_XX")
    assert scrub(text) == "HUGGINGFACE_ACCESS_TOKEN=*** url=https://***@proxy.example:8080 discord://*** ok=hf_XX"


def test_line_time_formats() -> None:
    assert line_time("2026-11-29T15:33:17.123456Z 1 > x") == 1795966397.0
    assert line_time('{"ts": "x", "ts_unix": 1700000000.5, "node": "n"}') == 1700000000.5
    assert line_time("plain line") is None
    assert recent_lines("2026-11-29T15:33:17.1Z 1 > a\n  continued\n2026-11-29T15:33:19.1Z 1 > b\n", 1795966398.0) == \
        "2026-11-29T15:33:19.1Z 1 > b\n"


def test_bundle_hides_the_org_id_everywhere(app: typer.Typer, tmp_path: Path) -> None:
    """The ORG_ID of userData.json (and of GSwarm's backup of it) is replaced in every bundled file: logs,
    doctor output, config — it ties a public bug report to the operator's account."""
    now = time.time()
    state, checkout = make_state(tmp_path, now)
    org = "331e4b6c-90aa-4d1b-9f5e-0123456789ab"
    (checkout / "modal-login" / "temp-data").mkdir(parents=True)
    (checkout / "modal-login" / "temp-data" / "userData.json").write_text(json.dumps({org: {"orgId": org, "email": "x"}}))
    (state / "backups" / "abc").mkdir(parents=True)
    (state / "backups" / "abc" / "userData.json").write_text(json.dumps({"backup-org-7777": {}}))
    log = state / "logs" / "default" / "output.log"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 30))
    log.write_text(log.read_text() + f"{stamp}.000001Z 12 > ORG_ID={org} backup-org-7777 env ORG_ID=another-org-9\n")
    out = tmp_path / "b.tar.gz"
    res = run(app, "bundle", "--minutes", "30", "--output", str(out), "--state-dir", str(state), "--rl-swarm-dir", str(checkout))
    assert res.exit_code == 0, res.output
    with tarfile.open(out) as tar:
        blob = "\n".join(tar.extractfile(n).read().decode() for n in tar.getnames())
    assert org not in blob and "backup-org-7777" not in blob and "another-org-9" not in blob
    assert "ORG_ID=*** *** env ORG_ID=***" in blob
