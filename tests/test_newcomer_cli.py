"""What a newcomer tripped over (issue #19): the demo, reading commands that wrote, inconsistent bad input.

Each test fails on the code before the fix (named in its docstring)."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.rlswarm.launch import build_launch_spec
from tests.helpers import run_cli


def _said(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code, out = run_cli(capsys, *args)
    return code, " ".join(out.split())


# --- demo and first steps ----------------------------------------------------------------------------

def _hold(port: int) -> socket.socket | None:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return s
    except OSError:  # held by something else already: busy either way
        s.close()
        return None


def test_demo_prints_its_state_dir_first_and_takes_a_free_port_when_8787_is_busy(tmp_path: Path) -> None:
    """Before: the state folder was printed only at the end, and a busy 8787 ended the demo with
    'port 8787 … is not available' (exit 2)."""
    held = _hold(8787)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GSWARM_", "XDG_"))}
    env["HOME"] = str(tmp_path / "home")
    try:
        p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--duration", "3", "--emu-pace", "0.1"],
                           env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    finally:
        if held is not None:
            held.close()
    assert p.returncode == 0, (p.stdout + p.stderr)[-2000:]
    first = p.stdout.splitlines()[0]
    m = re.fullmatch(r"demo state in (\S+): while it runs, try `gswarm status --state-dir (\S+)` in another shell", first)
    assert m and m.group(1) == m.group(2), first
    ports = re.findall(r"http://127\.0\.0\.1:(\d+)/", p.stdout)
    assert ports and "8787" not in ports, p.stdout[-2000:]
    # the end of --duration is a requested stop, said in words (before: "ended with signal 15")
    assert re.search(r"node pid \d+ stopped on request \(duration\) after", " ".join(p.stdout.split())), p.stdout[-1500:]


def test_demo_api_port_prefers_8787_and_falls_back_to_any() -> None:
    from gswarm.cli.run import demo_api_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        assert demo_api_port(preferred=busy) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert demo_api_port(preferred=free) == free


def test_emulated_traceback_names_the_python_that_runs(tmp_path: Path) -> None:
    """Before: the failure texts showed /usr/lib/python3.12/… whatever Python ran the node."""
    co = init_checkout(tmp_path / "E4", "E4", logged_in=True)
    spec = build_launch_spec(load_settings({}, env={}), co, has_gpu=False)
    env = {**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_FAULTS": "crash:dht_daemon_timeout@0"}
    p = subprocess.run(spec.argv, cwd=spec.cwd, env=env, capture_output=True, text=True, timeout=30)
    now = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    frames = re.findall(r"python3\.\d+/", p.stdout + p.stderr)
    assert p.returncode == 1 and frames and set(frames) == {now + "/"}, (p.stdout + p.stderr)[-1500:]


def test_launch_note_cites_nothing_that_does_not_ship(tmp_path: Path) -> None:
    """Before: '(generations.md, E4-E6 launch)', a file operators do not have."""
    co = init_checkout(tmp_path / "E5", "E5", logged_in=True)
    spec = build_launch_spec(load_settings({}, env={}), co, has_gpu=False)
    notes = " ".join(spec.notes)
    assert "generations.md" not in notes and "E5 picks a model at random at every start" in notes


def test_emulate_node_without_args_gives_a_usage_line(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Before: an emulated hydra.errors.MissingConfigException traceback."""
    co = init_checkout(tmp_path / "E6", "E6", logged_in=True)
    code, out = _said(capsys, "emulate", "node", "--rl-swarm-dir", str(co))
    assert code == 2 and out.startswith("error: usage: gswarm emulate node [--rl-swarm-dir DIR]") and "hydra" not in out


# --- reading commands must not write ------------------------------------------------------------------

def test_report_png_in_a_missing_folder_creates_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: `gswarm report --png /nonexistent/dir/x.png` created /nonexistent/dir."""
    target = tmp_path / "nonexistent" / "dir" / "x.png"
    code, out = _said(capsys, "report", "--png", str(target), "--state-dir", str(tmp_path / "st"))
    assert code == 2 and out == f"error: option --png: folder {target.parent} does not exist; create it first or pick another path"
    assert not (tmp_path / "nonexistent").exists()


def test_serve_and_doctor_leave_a_missing_state_dir_missing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: serve wrote <state>/api_token and run/, doctor created the folder."""
    missing = tmp_path / "nope"
    code, out = _said(capsys, "serve", "--state-dir", str(missing), "--port", "0")
    assert code == 2 and out.startswith(f"error: state directory {missing} does not exist: nothing was recorded there")
    _said(capsys, "doctor", "--state-dir", str(missing), "--rl-swarm-dir", str(tmp_path))
    assert not missing.exists()


def test_bundle_describes_the_recorded_run_not_its_own_command(tmp_path: Path) -> None:
    """Before: config.json held the bundling command's settings (rl_swarm_dir ".", emulated false)."""
    from gswarm.cli.diagnose import write_bundle
    from gswarm.clock import FakeClock
    from gswarm.config import Settings, redacted_dict
    from gswarm.logs._storeservice import StoreService
    import asyncio

    state = tmp_path / "state"
    state.mkdir()
    run_settings = Settings(rl_swarm_dir=tmp_path / "co", emulated=True, node_name="gpu0")

    async def record() -> None:
        svc = StoreService(ev.EventBus(), FakeClock(start=time.time()), state / "gswarm.db", node="gpu0",
                           run_settings={"gpu0": redacted_dict(run_settings)})
        task = asyncio.ensure_future(svc.run())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(record())
    path = write_bundle(Settings(rl_swarm_dir=Path(".")), state, 5, tmp_path / "b.tgz", time.time())
    with tarfile.open(path) as tar:
        cfg = json.loads(tar.extractfile("config.json").read())
    assert cfg["source"] == "the run recorded in the store"
    assert (cfg["settings"]["rl_swarm_dir"], cfg["settings"]["emulated"], cfg["settings"]["node_name"]) == \
        (str(tmp_path / "co"), True, "gpu0")


# --- consistency of bad input --------------------------------------------------------------------------

def test_generation_is_case_insensitive_and_needs_emulated(capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: `run --generation e3` was refused (diagnose accepted e4) and --generation without --emulated
    was silently ignored."""
    from gswarm.cli.run import check_generation

    assert check_generation("e3", True) == "E3" and check_generation(None, False) == "E6"
    code, out = _said(capsys, "run", "--generation", "E4", "--no-api")
    assert code == 2 and out == ("error: option --generation 'E4' only applies with --emulated: a real checkout's "
                                 "generation is detected from its files (see `gswarm plan`)")
    code, out = _said(capsys, "run", "--emulated", "--generation", "E9", "--no-api")
    assert code == 2 and out == "error: option --generation: 'E9' is not one of E0, E1, E2, E3, E4, E5, E6"


def _jsonlog(state: Path) -> None:
    (state / "logs").mkdir(parents=True)
    now = time.time()
    recs = [{"ts_unix": now - 120, "node": "n", "level": "info", "category": "output", "message": "a (((x", "kind": "output"},
            {"ts_unix": now - 60, "node": "n", "level": "info", "category": "output", "message": "plain", "kind": "output"}]
    (state / "logs" / "gswarm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_logs_since_after_until_is_an_error_and_grep_is_plain_text(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: --since 1m --until 10m printed nothing with exit 0; --grep '(((' was refused while the API took it."""
    st = tmp_path / "st"
    _jsonlog(st)
    code, out = _said(capsys, "logs", "--since", "1m", "--until", "10m", "--state-dir", str(st))
    assert code == 2 and out == ("error: --since '1m' is later than --until '10m': nothing can match; --since is the "
                                 "start (e.g. --since 10m --until 1m)")
    code, out = run_cli(capsys, "logs", "--json", "--grep", "(((X", "--state-dir", str(st))
    assert code == 0 and [json.loads(x)["message"] for x in out.splitlines()] == ["a (((x"]
    code, out = run_cli(capsys, "logs", "--json", "--regex", "^pl", "--state-dir", str(st))
    assert code == 0 and [json.loads(x)["message"] for x in out.splitlines()] == ["plain"]


@pytest.mark.parametrize("port", ["-5", "0", "99999999"])
def test_email_url_port_out_of_range_is_refused(capsys, port: str) -> None:  # type: ignore[no-untyped-def]
    """Before: a URL was built with the port and exit 0."""
    code, out = _said(capsys, "notify", "url", "email", "--host", "smtp.example.org", "--to", "a@example.org",
                      "--from", "b@example.org", "--port", port)
    assert code == 2 and out == f"error: e-mail --port {port} is not a TCP port; use 1-65535 (587 starttls, 465 ssl, 25 none)"


def test_control_characters_in_paths_are_escaped_in_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: ESC [31m reached the terminal raw."""
    bad = tmp_path / "\x1b[31mred"
    bad.write_text("x")
    code, out = run_cli(capsys, "status", "--state-dir", str(bad))
    assert code == 2 and "\x1b" not in out and "\\x1b[31mred is a file" in " ".join(out.split())


def test_maintenance_off_without_window_and_status_with_reason(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: 'maintenance window ended' with no window; status omitted the reason."""
    st = tmp_path / "st"
    assert run_cli(capsys, "maintenance", "off", "--state-dir", str(st)) == \
        (0, "no maintenance window was active: alerts and restarts are on\n")
    code, out = run_cli(capsys, "maintenance", "2h", "--reason", "driver update", "--state-dir", str(st))
    m = re.fullmatch(r"maintenance until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}) \((\d+ h \d+ min|120 min) left\) "
                     r"\(driver update\): no alerts, no restarts\n", out)
    assert code == 0 and m, out
    assert run_cli(capsys, "maintenance", "off", "--state-dir", str(st)) == \
        (0, "maintenance window ended: alerts and restarts are back on\n")


def test_exit_in_words_and_a_requested_stop_is_not_an_error() -> None:
    """Before: 'pid N exited code=1 signal=None'; a requested stop read 'killed by signal 15'."""
    assert ev.exit_words(1, None) == "exited with code 1"
    assert ev.exit_words(None, 9) == "killed by SIGKILL (signal 9)"
    assert ev.exit_words(0, None) == "exited normally (code 0)"
    assert ev.exit_words(None, 15, "api") == "stopped on request (api)"


def test_requested_stop_is_recorded_as_requested(tmp_path: Path) -> None:
    from gswarm.logs._storeread import StoreReader
    from gswarm.logs.store import Store

    db = tmp_path / "gswarm.db"
    store = Store(db)
    store.write([ev.ProcessStarted("n", 100.0, 7, 7, ("python",), "E4", "direct"),
                 ev.ProcessExited("n", 130.0, 7, None, 15, 30.0, requested="cli")])
    store.close()
    reader = StoreReader(db)
    run = reader.runs()[0]
    exit_event = reader.events(kind="exit")[0]
    assert run["requested"] == "cli" and exit_event["message"] == "pid 7 stopped on request (cli) after 30 s"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT requested FROM runs").fetchone() == ("cli",)
    conn.close()


# --- setup and login on emulated checkouts --------------------------------------------------------------

def _gswarm(args: list[str], cwd: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")} | env
    return subprocess.run([sys.executable, "-m", "gswarm", *args], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_setup_of_an_emulated_e3_checkout_installs_its_genrl_clone_offline(tmp_path: Path) -> None:
    """Before: 'genrl-swarm does not appear to be a Python project' (and then missing yarn)."""
    co = init_checkout(tmp_path / "E3", "E3")
    p = _gswarm(["setup", "--state-dir", str(tmp_path / "st")], co, PIP_NO_INDEX="1")  # no index: nothing downloaded
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-2000:]
    assert "E3: venv" in out and "modal-login: built" in out
    found = subprocess.run([str(co / ".venv" / "bin" / "python"), "-c", "import genrl_swarm; print(genrl_swarm.__file__)"],
                           capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == str(co / "genrl-swarm" / "src" / "genrl_swarm" / "__init__.py")


def test_login_on_an_emulated_checkout_uses_its_yarn_stand_in(tmp_path: Path) -> None:
    """Before: 'yarn is not installed (modal-login needs it)' on every emulated checkout."""
    co = init_checkout(tmp_path / "E6", "E6")
    p = _gswarm(["login", "--state-dir", str(tmp_path / "st"), "--timeout", "60"], co, timeout=90,
                MODAL_ARGS="--auto-login --login-delay 0.5", PATH="/usr/bin:/bin")  # no real yarn or node
    out = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 0, out[-2000:]
    org = json.loads((co / "modal-login" / "temp-data" / "userData.json").read_text())
    assert re.search(r"logged in: ORG_ID (\S+) \(login files backed up", out).group(1) == next(iter(org))


@pytest.mark.parametrize("gen", ["E4", "E5"])
def test_emulated_e4_e5_setup_installs_nothing_from_the_network(tmp_path: Path, gen: str) -> None:
    """Before: the emulated script's real specs (gensyn-genrl, hivemind from git) were installed: network."""
    from gswarm.rlswarm.setup import install_plan

    co = init_checkout(tmp_path / gen, gen)
    assert install_plan(co, gen, "cpu") == []
    real = tmp_path / "real"
    (real).mkdir()
    (real / "run_rl_swarm.sh").write_text((co / "run_rl_swarm.sh").read_text())
    assert install_plan(real, gen, "cpu")[0].label == "genrl"  # a real checkout still installs genrl


def test_a_failed_git_clone_of_a_requirement_is_a_network_cause() -> None:
    """Before: DNS failure of pip's `git clone` read as 'build failure … install the build tools'."""
    from gswarm.rlswarm.setup import classify_pip_failure

    out = ("  Running command git clone --filter=blob:none --quiet https://github.com/gensyn-ai/hivemind /tmp/pip-req\n"
           "  fatal: unable to access 'https://github.com/gensyn-ai/hivemind/': Could not resolve host: github.com\n"
           "  error: subprocess-exited-with-error\n")
    assert classify_pip_failure(out)[0] == "no network"


@pytest.mark.parametrize("args, message", [
    (["--duration", "banana"], "error: option --duration: 'banana' is not a duration"),
    (["--nodes", "0"], "error: option --nodes: 0 must be from 1 to 16"),
    (["--node-name", "bad name"], "option node_name (from --node-name): node name 'bad name' is not allowed"),
])
def test_demo_refuses_bad_input_before_hints_or_folders(tmp_path: Path, args: list[str], message: str) -> None:
    """Before: the demo printed 'demo state in …' (and 'kept in …') and left an empty temp folder, then the error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")} | {"TMPDIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--no-api", *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and message in " ".join(p.stderr.split()) and "demo state" not in p.stdout
    assert list(tmp_path.iterdir()) == []


def test_logs_of_an_unknown_node_is_an_error_like_status(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: `gswarm logs --node nosuch` printed nothing with exit 0 (status and report: exit 2)."""
    from gswarm.logs.store import Store

    st = tmp_path / "st"
    _jsonlog(st)
    store = Store(st / "gswarm.db")
    store.write([ev.ProcessStarted("n", time.time(), 7, 7, ("python",), "E4", "direct")])
    store.close()
    code, out = _said(capsys, "logs", "--node", "nosuch", "--state-dir", str(st))
    assert code == 2 and out == f"error: unknown node 'nosuch' in {st}; known nodes: n (pass one with --node)"
    assert run_cli(capsys, "logs", "--node", "n", "--json", "--state-dir", str(st))[0] == 0


def test_housekeeping_is_a_note_not_a_recovery_warning() -> None:
    """Before: 'login files backed up …' was printed as 'gswarm recovery none: …' and logged at WARNING."""
    import io

    from gswarm.cli._runview import RunView
    from gswarm.logs.jsonlog import record_of

    action = ev.RecoveryAction("n", 100.0, ev.Recovery.NONE, "login files backed up to /s/backups (0600)")
    buf = io.StringIO()
    RunView(buf).event(action)
    assert " ".join(buf.getvalue().split()).endswith("note: login files backed up to /s/backups (0600)")
    assert "recovery none" not in buf.getvalue()
    assert record_of(action).get("level", "info") == "info"
    restart = ev.RecoveryAction("n", 100.0, ev.Recovery.REINSTALL_DEPS, "reinstalling")
    assert record_of(restart)["level"] == "warning"
