"""The emulated node run directly (real subprocesses, the real launch spec, fast pace)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.emulator.node import animal_of, parse_faults, peer_id_of
from gswarm.rlswarm.launch import build_launch_spec

GENRL_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[genrl\.logging_utils\.global_defs\]\[INFO\] - ")
HELLO = re.compile(r"Hello .*?\[([a-z]+ [a-z]+ [a-z]+)\].*?\[(Qm[1-9A-HJ-NP-Za-km-z]{44})\]")


def start(tmp_path: Path, gen: str, **emu: str) -> tuple[subprocess.Popen, Path]:
    co = init_checkout(tmp_path / gen, gen, logged_in=True)
    spec = build_launch_spec(load_settings({}, env={}), co, has_gpu=False)
    env = {**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", **{f"GSWARM_EMU_{k.upper()}": v for k, v in emu.items()}}
    proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    return proc, co


def finish(proc: subprocess.Popen, timeout: float = 20) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # orphaned p2pd stand-ins (sigkill case)
        except ProcessLookupError:
            pass
    return out


def test_e6_rounds_format_and_log_file(tmp_path: Path) -> None:
    proc, co = start(tmp_path, "E6", rounds="2")
    out = finish(proc)
    assert proc.returncode == 0
    lines = out.splitlines()
    assert all(GENRL_LINE.match(line) for line in lines), lines
    msgs = [line.split("] - ", 1)[1] for line in lines]
    assert msgs[1] == "============!!!Joining CodeZero Swarm!!!============"
    animal, peer = HELLO.search(msgs[2]).groups()
    assert msgs[2] == f"🐝 Hello [{animal}] [{peer}]!" and len(peer) == 46 and animal == animal_of(peer)
    assert msgs[4:] == ["🐝 Joining round: 1000", "Starting round: 1000/1000000.",
                        "Already finished round: 1000. Next check in 5.0s.",
                        "🐝 Joining round: 1001", "Starting round: 1001/1000000.",
                        "Already finished round: 1001. Next check in 5.0s.", "Training timed out!"]
    assert (co / "logs/swarm_launcher.log").read_text().splitlines() == lines
    assert sorted(p.name for p in (co / "logs").iterdir()) == [".hydra", "swarm_launcher.log", "system_info.txt"]
    assert json.loads((co / ".gswarm-emulator/state.json").read_text()) == {"runs": 1, "round": 1002}
    assert (co / "swarm.pem").stat().st_mode & 0o777 == 0o600


def test_identity_is_stable_across_runs(tmp_path: Path) -> None:
    proc, co = start(tmp_path, "E4", rounds="1")
    first = HELLO.search(finish(proc)).group(2)
    spec = build_launch_spec(load_settings({}, env={}), co)
    again = subprocess.run(spec.argv, cwd=co, env={**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_ROUNDS": "1"},
                           capture_output=True, text=True, timeout=20)
    assert HELLO.search(again.stdout).group(2) == first == peer_id_of((co / "swarm.pem").read_bytes())
    animal_log = (co / "logs" / f"training_{animal_of(first).replace(' ', '_')}.log").read_text()
    assert re.search(r"^\[[a-z]+_[a-z]+_[a-z]+\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO: Starting round: 1001/1000000\.$", animal_log, re.M)
    assert "Starting round: 1001/1000000." in again.stdout  # the swarm moved on


def test_e2_console_and_swarm_log(tmp_path: Path) -> None:
    proc, co = start(tmp_path, "E2", rounds="1")
    out = finish(proc)
    assert proc.returncode == 0
    assert re.search(r"^INFO:hivemind_exp\.trainer\.hivemind_grpo_trainer:[a-z]+ [a-z]+ [a-z]+:📈 Training round: 1000 stage: 2$", out, re.M)
    assert re.search(r"🏆 Submitting winners for round 1000: \['Qm\w{44}'\]", out)
    assert "Already finished round: 1000. Next check in 5.0s." in out
    log = (co / "logs/swarm.log").read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - INFO - hivemind_exp\.trainer\.hivemind_grpo_trainer:[a-z ]+:\d+ - 📉 Finished training round: 1000 stage: 1$", log, re.M)


def test_e0_tagged_rounds(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "E0", rounds="1")
    out = finish(proc)
    assert re.search(r"\[F-[0-9a-f-]{36}\] Joining round: 1000 starting at stage: 0", out)
    assert re.search(r"\[F-[0-9a-f-]{36}\] Already finished round: 1000\. Skipping\.", out)
    assert out.rstrip().endswith("*** Training complete! ***") and proc.returncode == 0


def test_sigkill_fault_leaves_p2pd_like_oom(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "E6", faults="sigkill@0.1")
    proc.wait(20)
    assert proc.returncode == -9
    left = [p for p in psutil.process_iter(["cmdline"]) if "gswarm-emu-p2pd" in (p.info["cmdline"] or [])
            and _pgid(p.pid) == proc.pid]
    assert len(left) == 1  # the p2pd stand-in of the same group survived, as after the OOM killer
    finish(proc)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_crash_fault_prints_category_text(tmp_path: Path) -> None:
    texts = json.loads((Path(__file__).parents[1] / "src/gswarm/emulator/failure_texts.json").read_text())
    proc, co = start(tmp_path, "E6", faults="crash:dht_daemon_timeout@0.05")
    out = finish(proc)
    assert proc.returncode == (1 if texts["dht_daemon_timeout"]["ending"] == "exit1" else 0)
    here = f"python{sys.version_info[0]}.{sys.version_info[1]}/"  # the texts' frames name the Python that runs (#19)
    expected = [re.sub(r"python3\.\d+/", here, line) for line in texts["dht_daemon_timeout"]["lines"]]
    assert out.splitlines()[-len(expected):] == expected
    assert texts["dht_daemon_timeout"]["lines"][-1] in (co / "logs/swarm_launcher.log").read_text()


def test_crash_unknown_category_generic_traceback(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "E4", faults="crash:no_such_thing@0")
    out = finish(proc)
    assert proc.returncode == 1
    assert out.splitlines()[-1] == "RuntimeError: emulated failure 'no_such_thing' (no text in failure_texts.json)"


def test_exit0_and_run_counter(tmp_path: Path) -> None:
    """`#1` faults only hit the first start: crash then recover."""
    proc, co = start(tmp_path, "E6", faults="exit0@0#1")
    finish(proc)
    assert proc.returncode == 0
    spec = build_launch_spec(load_settings({}, env={}), co)
    env = {**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_FAULTS": "exit0@0#1", "GSWARM_EMU_ROUNDS": "1"}
    second = subprocess.run(spec.argv, cwd=co, env=env, capture_output=True, text=True, timeout=20)
    assert "Starting round:" in second.stdout and second.returncode == 0
    assert json.loads((co / ".gswarm-emulator/state.json").read_text())["runs"] == 2


def test_hang_then_sigterm_ends_child(tmp_path: Path) -> None:
    proc, co = start(tmp_path, "E6", faults="hang@0")
    try:
        log = co / "logs/swarm_launcher.log"
        deadline = time.monotonic() + 15
        while "Using Model:" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # 30 steps at this pace: a running node would have printed rounds by now
        assert "Joining round" not in log.read_text()  # hung at its first step, no output
        (child,) = psutil.Process(proc.pid).children()
        assert "gswarm-emu-p2pd" in child.cmdline() and os.getpgid(child.pid) == proc.pid
        os.kill(proc.pid, signal.SIGTERM)  # the node only: it ends its child itself
    finally:
        finish(proc)  # reaps and, whatever happened above, ends the node's whole group
    assert proc.returncode == -15
    assert not psutil.pid_exists(child.pid)


def test_stall_swallowed_reject_flood(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "E5", faults="flood:500@0,swallowed@0,reject@0", rounds="2")
    out = finish(proc)
    assert out.count("Map: 100%|") == 500
    assert out.count("Error occurred during training, continuing...") == 2
    assert out.count("Failed to submit to chain.") == 2
    assert out.count("HTTPError: 400 Client Error: Bad Request for url: http://localhost:3000/api/submit-reward") == 2
    assert "placed bet of" in out and "successfully claimed reward for previous game 99" in out
    assert len((tmp_path / "E5/logs/prg_record.txt").read_text().splitlines()) == 3  # 2 bets + 1 claim
    proc, co = start(tmp_path / "s", "E6", faults="stall@0.05")
    log = co / "logs/swarm_launcher.log"
    deadline = time.monotonic() + 15
    while (log.read_text() if log.exists() else "").count("Already finished round") < 12:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc)
    last_start = re.findall(r"Starting round: (\d+)/1000000\.", out)[-1]
    waits = re.findall(r"Already finished round: (\d+)\. Next check in", out.rsplit("Starting round", 1)[1])
    assert len(waits) >= 5 and set(waits) == {last_start}  # the same round forever, no new round


def test_missing_org_id_fails_like_hydra(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "e6", "E6")
    spec = build_launch_spec(load_settings({"org_id": "x"}, env={}), co)
    env = {**os.environ, **{k: v for k, v in spec.env.items() if k != "ORG_ID"}, "GSWARM_EMU_PACE": "0.01"}
    res = subprocess.run(spec.argv, cwd=co, env=env, capture_output=True, text=True, timeout=20)
    assert res.returncode == 1 and "Environment variable 'ORG_ID' not found" in res.stderr


def test_parse_faults() -> None:
    faults = parse_faults("crash:cuda_oom@2#1, sigkill@30 flood:100")
    assert [(f.kind, f.arg, f.at, f.run) for f in faults] == [
        ("crash", "cuda_oom", 2.0, 1), ("sigkill", None, 30.0, None), ("flood", "100", 0.0, None)]
    for bad in ("explode@1", "crash@1", "flood:x@1", "sigkill@soon"):
        with pytest.raises(ValueError, match="GSWARM_EMU_FAULTS"):
            parse_faults(bad)


@pytest.mark.parametrize("gen", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
def test_every_generation_runs_direct(tmp_path: Path, gen: str) -> None:
    proc, _ = start(tmp_path, gen, rounds="1")
    out = finish(proc)
    assert proc.returncode == 0
    marker = "Training round: 1000 stage: 0" if gen in ("E0", "E1", "E2") else "Starting round: 1000/1000000."
    assert marker in out and HELLO.search(out)
    assert ("genrl_swarm.logging_utils.global_defs" in out) == (gen == "E3")


def test_register_peer_posts_to_modal_url(tmp_path: Path) -> None:
    """With GSWARM_EMU_MODAL_URL the node registers like the real one; a repeat 400 PeerIdAlreadyRegistered is benign."""
    import http.server
    import threading

    bodies: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            code, body = (200, b"{}") if len(bodies) == 1 else (400, b'{"error":"PeerIdAlreadyRegistered"}')
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        proc, co = start(tmp_path, "E6", rounds="1", modal_url=url)
        assert finish(proc) and proc.returncode == 0
        spec = build_launch_spec(load_settings({}, env={}), co)
        env = {**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_ROUNDS": "1", "GSWARM_EMU_MODAL_URL": url}
        again = subprocess.run(spec.argv, cwd=co, env=env, capture_output=True, text=True, timeout=20)
    finally:
        server.shutdown()
    assert [b["orgId"] for b in bodies] == [spec.env["ORG_ID"]] * 2
    assert bodies[0]["peerId"] == bodies[1]["peerId"] == peer_id_of((co / "swarm.pem").read_bytes())
    assert f"Peer ID [{bodies[0]['peerId']}] is already registered! Continuing." in again.stdout
    assert again.returncode == 0


def test_bad_emulator_env_is_named(tmp_path: Path) -> None:
    proc, co = start(tmp_path, "E6", pace="fast")
    out = finish(proc)
    assert proc.returncode == 2
    assert out.strip() == "gswarm emulator: GSWARM_EMU_PACE='fast' is not a number; unset it or give seconds/counts like 0.5"
    assert not (co / ".gswarm-emulator/state.json").exists()  # a refused start is not counted
