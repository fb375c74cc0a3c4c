"""Bad input (flags, config files, env vars, state files) → one clear GSwarmError message and exit code.

Each test runs the real CLI (``gswarm.cli.main``) or the loader, and asserts the exact message.
Unwritable places: a path under a regular FILE (``F/x``) gives a clean OSError even as root.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import pytest

from gswarm import maintenance
from tests.helpers import run_cli
from gswarm.config import load_settings
from gswarm.errors import ConfigError, LoginError

ANOTHER = "pass another --state-dir (or set GSWARM_STATE_DIR / state_dir in the config file)"
BINARY = bytes([0xB6, 0x00, 0xFF, 0x13, 0x9C]) * 100  # not UTF-8 (bad byte at offset 0)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``gswarm.cli.main(args)`` in ``tmp_path``; returns (exit code, stdout + stderr with whitespace
    collapsed: rich wraps long error lines at 80 columns)."""
    monkeypatch.chdir(tmp_path)

    def go(*args: str) -> tuple[int, str]:
        code, out = run_cli(capsys, *args)
        return code, " ".join(out.split())

    return go


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    f = tmp_path / "F"
    f.write_text("not a folder\n")
    return f


# --- 1. the state directory -------------------------------------------------------------------------

STATE_COMMANDS = [["plan"], ["status"], ["logs"], ["report"], ["maintenance", "10m"], ["maintenance", "status"],
                  ["maintenance", "off"], ["bundle"], ["run", "--emulated", "--duration", "1", "--no-api"], ["serve"]]


@pytest.mark.parametrize("command", STATE_COMMANDS, ids=lambda c: "-".join(c))
def test_state_dir_that_is_a_file_is_one_config_error(cli, afile: Path, command: list[str]) -> None:
    assert cli(*command, "--state-dir", "F") == (2, f"error: state directory F is a file; {ANOTHER}")


@pytest.mark.parametrize("command", [["status"], ["maintenance", "10m"], ["report"]], ids=lambda c: "-".join(c))
def test_state_dir_that_cannot_be_created_from_env_and_toml(cli, afile: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("GSWARM_STATE_DIR", "F/x")
    assert cli(*command) == (2, f"error: state directory F/x cannot be created (Not a directory); {ANOTHER}")
    monkeypatch.delenv("GSWARM_STATE_DIR")
    (tmp_path / "c.toml").write_text('state_dir = "F/y"\n')
    assert cli(*command, "--config-file", "c.toml") == (
        2, f"error: state directory F/y cannot be created (Not a directory); {ANOTHER}")


def test_state_dir_not_writable_refused_for_writers_only(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):  # as in a read-only mount (root ignores chmod 500)
        if Path(kwargs.get("dir") or "").resolve() == ro.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    assert cli("maintenance", "10m", "--state-dir", "ro") == (
        2, f"error: state directory ro is not writable (Permission denied); {ANOTHER}")
    assert not (ro / maintenance.FILE).exists()
    assert cli("maintenance", "status", "--state-dir", "ro") == (0, "no maintenance window")


# --- 2. state_dir of the wrong type in TOML -------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [("5", "int 5"), ('["a"]', "list ['a']")])
def test_toml_state_dir_must_be_a_path(tmp_path: Path, value: str, shown: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"state_dir = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"config_file": cfg}, env={})
    assert str(info.value) == (f"option state_dir (from file {cfg}): expected a path, got {shown}; "
                               'write it as a string, e.g. state_dir = "/var/lib/gswarm"')


# --- 3. binary userData.json ----------------------------------------------------------------------------

def test_binary_user_data_is_a_login_error(tmp_path: Path, cli) -> None:
    from gswarm.rlswarm._userdata import org_id_from_checkout
    from gswarm.rlswarm.identity import read_org_id

    path = tmp_path / "modal-login" / "temp-data" / "userData.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(BINARY)
    with pytest.raises(LoginError) as info:
        org_id_from_checkout(tmp_path)
    assert str(info.value) == (f"{path} is not valid JSON (not UTF-8 text: bad byte at offset 0); "
                               "delete it and log in again, or pass --org-id")
    with pytest.raises(LoginError) as info:
        read_org_id(path)
    assert str(info.value) == (f"{path} is not valid JSON (not UTF-8 text: bad byte at offset 0); log in again at the "
                               "modal-login page (http://localhost:3000) so it is written anew (the file was left in place)")
    assert path.read_bytes() == BINARY


# --- 4. extra_env names and values ----------------------------------------------------------------------

@pytest.mark.parametrize("env_json, problem", [
    ('{"A=B": "x"}', "name 'A=B' may not contain '=' or NUL"),
    ('{"A\\u0000B": "x"}', "name 'A\\x00B' may not contain '=' or NUL"),
    ('{"": "x"}', "a variable name is empty; give every entry a name"),
    ('{"A": "x\\u0000y"}', "the value of 'A' may not contain NUL"),
])
def test_extra_env_refuses_what_exec_refuses(env_json: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({}, env={"GSWARM_EXTRA_ENV": env_json})
    assert str(info.value) == f"invalid configuration:\n  option extra_env (from GSWARM_EXTRA_ENV): {problem}"


def test_extra_env_from_toml_stops_plan(cli, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[extra_env]\n"A=B" = "x"\n')
    assert cli("plan", "--config-file", "c.toml") == (
        2, "error: invalid configuration: option extra_env (from file c.toml): name 'A=B' may not contain '=' or NUL")


# --- 5. maintenance window --------------------------------------------------------------------------------

def test_maintenance_duration_is_capped_and_nothing_written(cli, state_dir: Path) -> None:
    limit = "is longer than the limit of 365 days; use e.g. 30m, 2h or 7d (end it early with `gswarm maintenance off`)"
    assert cli("maintenance", "99999999999999999h") == (2, f"error: maintenance: '99999999999999999h' {limit}")
    assert cli("maintenance", "366d") == (2, f"error: maintenance: '366d' {limit}")
    assert not (state_dir / maintenance.FILE).exists()
    code, out = cli("maintenance", "365d")
    assert code == 0 and out.startswith("maintenance until") and "(365 d 0 h left)" in out
    with pytest.raises(ConfigError, match="out of range"):
        maintenance.set_window(state_dir, math.inf)


BROKEN = [
    ('{"until": 1e300}', "has \"until\" = '1e+300', not a Unix time in range"),
    ("xx", "is not valid JSON"),
    ("[1]", 'is not a JSON object with "until" (Unix seconds)'),
    ('{"until": "abc"}', "has \"until\" = 'abc', not a Unix time in range"),
    (BINARY, "is not UTF-8 text"),
]


@pytest.mark.parametrize("content, why", BROKEN, ids=["1e300", "text", "list", "abc", "binary"])
def test_broken_maintenance_file_is_reported_not_crashing(cli, state_dir: Path, content, why: str) -> None:
    path = state_dir / maintenance.FILE
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert maintenance.active_until(state_dir, time.time()) is None
    warning = (f"{path} {why}; it is ignored, so alerts and restarts are active; "
               "remove it with `gswarm maintenance off` or replace it with `gswarm maintenance 30m`")
    assert maintenance.problem(state_dir) == warning
    assert cli("maintenance", "status") == (0, f"no maintenance window warning: {warning}")  # (stdout, then stderr)
    assert cli("status")[0] == 0  # read through monitor.status: no OverflowError any more
    assert cli("maintenance", "off")[0] == 0 and maintenance.problem(state_dir) is None


def test_numeric_string_until_still_counts(state_dir: Path) -> None:
    (state_dir / maintenance.FILE).write_text(json.dumps({"until": str(time.time() + 600)}))
    assert maintenance.active_until(state_dir, time.time()) is not None and maintenance.problem(state_dir) is None


# --- 6. times out of range ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["99999999999999h", "0001-01-01T00:00:00", "1960-01-01T00:00:00+00:00"])
def test_parse_time_refuses_out_of_range(value: str) -> None:
    from gswarm.logs._jsonread import parse_time

    with pytest.raises(ConfigError) as info:
        parse_time(value, time.time(), "--until")
    assert str(info.value) == (f"--until {value!r} is out of range (it must fall between 1970-01-01 and 9999-12-31); "
                               "use a duration like 30m, 2h, 7d or an ISO time like 2025-07-27T16:00:00")
    assert parse_time("2h", 10000.0) == 2800.0


def test_report_since_out_of_range(cli, state_dir: Path) -> None:
    assert cli("report", "--since", "99999999999999h") == (
        2, "error: --since '99999999999999h' reaches back before 1970; use e.g. 24h, 7d or 30d")


# --- 7. output paths ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, message", [
    ("DIR", "option --png: DIR is a folder; pass a file name, e.g. DIR/digest.png"),
    ("F/x.png", "option --png: F is a file, not a folder; pick another path"),
    ("F/sub/x.png", "option --png: folder F/sub does not exist; create it first or pick another path"),
    ("missing/dir/x.png", "option --png: folder missing/dir does not exist; create it first or pick another path"),
])
def test_report_png_path_errors(cli, afile: Path, tmp_path: Path, state_dir: Path, target: str, message: str) -> None:
    (tmp_path / "DIR").mkdir()
    assert cli("report", "--png", target) == (2, f"error: {message}")
    assert not (tmp_path / "missing").exists()  # a reading command creates no folder (#19)


@pytest.mark.parametrize("target, message", [
    ("DIR", "option --output: DIR is a folder; pass a file name, e.g. DIR/gswarm-bundle.tar.gz"),
    ("F/x.tgz", "option --output: F is a file, not a folder; pick another path"),
    ("missing/x.tgz", "option --output: folder missing does not exist; create it first or pick another path"),
])
def test_bundle_output_path_errors(cli, afile: Path, tmp_path: Path, state_dir: Path, target: str, message: str) -> None:
    (tmp_path / "DIR").mkdir()
    assert cli("bundle", "--rl-swarm-dir", ".", "--output", target) == (2, f"error: {message}")
    assert not (tmp_path / "missing").exists() and list((tmp_path / "DIR").iterdir()) == []


# --- 8. emulate init where nothing can be written ------------------------------------------------------------

def test_emulate_init_unwritable_target(cli, afile: Path) -> None:
    code, out = cli("emulate", "init", "F/x")
    assert (code, out) == (2, f"error: cannot write the emulated checkout to F/x: Not a directory ({afile}/x); "
                              "choose another DIR")


# --- 9. diagnose reads only the tail -------------------------------------------------------------------------

def test_diagnose_reads_the_tail_of_a_big_file(cli, tmp_path: Path) -> None:
    from gswarm.cli.diagnose import MAX_BYTES, read_log_tail

    big = tmp_path / "big.log"
    with big.open("wb") as fh:
        fh.write(b"RuntimeError: DHTNode bootstrap failed: none of the initial_peers responded to a ping.\n")
        fh.write(b"x" * 99 + b"\n" + (b"Jun 07 [INFO] ok " + b"y" * 200 + b"\n") * (MAX_BYTES // 218 + 10))
        fh.write(b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    code, out = cli("diagnose", "big.log", "--json")
    d = json.loads(out)
    assert code == 0 and d["note"] == "read the last 32 MB of big.log (the rest was skipped)"
    assert d["category"] == "cuda_oom"
    lines, note = read_log_tail(str(big), max_bytes=1000, max_lines=3)
    assert lines == ["Jun 07 [INFO] ok " + "y" * 200, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", ""]
    assert note == f"read the last 3 lines of {big} (the rest was skipped)"
    code, out = cli("diagnose", "big.log")
    assert out.startswith("note: read the last 32 MB of big.log (the rest was skipped) category: cuda_oom")


def test_diagnose_stream_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from gswarm.cli.diagnose import _stream_tail

    class Endless(io.RawIOBase):  # 64 MiB of zeros, 1 MiB per read; only the last 2 MiB may be kept
        def __init__(self) -> None:
            self.left = 64

        def read(self, n: int = -1) -> bytes:
            if not self.left:
                return b""
            self.left -= 1
            return b"\0" * (1 << 20)

    data, cut = _stream_tail(Endless(), 2 << 20)
    assert cut and len(data) == 2 << 20


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_diagnose_refuses_a_device() -> None:
    import resource
    import subprocess
    import sys

    def limit() -> None:  # without the fix this read /dev/zero until the machine ran out of memory
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    res = subprocess.run([sys.executable, "-m", "gswarm", "diagnose", "/dev/zero"], capture_output=True, text=True,
                         timeout=120, preexec_fn=limit, env={**os.environ, "COLUMNS": "300"})
    assert (res.returncode, res.stderr.strip()) == (
        2, "error: /dev/zero is a device, not a log file; pass a log file, or - to read stdin")


# --- 10. report on an unknown node ---------------------------------------------------------------------------

def test_report_unknown_node(cli, state_dir: Path) -> None:
    from gswarm import events as ev
    from gswarm.logs.store import Store

    store = Store(state_dir / "gswarm.db")
    store.write([ev.StateChanged("default", time.time() - 60, ev.NodeState.STOPPED, ev.NodeState.STARTING, "start")])
    store.close()
    assert cli("report", "--node", "nope") == (
        2, f"error: unknown node 'nope' in {state_dir}; known nodes: default (pass one with --node)")
    code, out = cli("report", "--node", "default")
    assert code == 0 and out.startswith("[default] GSwarm daily digest")


# --- 11. --emu-pace ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pace, shown", [("-1", "-1.0"), ("nan", "nan"), ("0", "0.0"), ("inf", "inf")])
def test_emu_pace_must_be_positive(cli, pace: str, shown: str) -> None:
    assert cli("run", "--emulated", "--emu-pace", pace, "--duration", "1", "--no-api") == (
        2, f"error: option --emu-pace: {shown} is not a positive number of seconds per emulated step; use e.g. 0.05 or 1")


# --- 12. notify_channels tables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("toml, problem", [
    ('[[notify_channels]]\nname = "ops"\n',
     'entry 0 (notify_channels[0]): field url is missing; every channel needs url = "<Apprise URL>" '
     "(see `gswarm notify url --help`)"),
    ('[[notify_channels]]\nurl = "json://localhost/a"\n[[notify_channels]]\nurl = 5\n',
     'entry 1 (notify_channels[1]): field url must be a non-empty string (an Apprise URL, e.g. url = "tgram://TOKEN/CHAT")'),
    ('[[notify_channels]]\nurl = "tgram://123:SECRETTOKEN/1"\ncolour = "red"\n',
     "entry 0 (notify_channels[0]): field 'colour' is unknown; allowed fields: url, name, tags, kinds, min_severity"),
    ('[[notify_channels]]\nurl = "json://localhost/a"\nmin_severity = "loud"\n',
     "entry 0 (notify_channels[0]): field min_severity must be one of debug, info, warning, error, critical"),
    ('[[notify_channels]]\nurl = "json://localhost/a"\ntags = [1]\n',
     'entry 0 (notify_channels[0]): field tags must be a list of strings (e.g. tags = ["a", "b"]) or a comma-separated string'),
])
def test_notify_channels_checked_when_settings_load(cli, tmp_path: Path, toml: str, problem: str) -> None:
    (tmp_path / "c.toml").write_text(toml)
    expected = f"invalid configuration:\n  option notify_channels (from file c.toml): {problem}"
    with pytest.raises(ConfigError) as info:
        load_settings({"config_file": Path("c.toml")}, env={})
    assert str(info.value) == expected and "SECRETTOKEN" not in expected
    assert cli("plan", "--config-file", "c.toml") == (2, "error: " + " ".join(expected.split()))
    assert cli("run", "--emulated", "--config-file", "c.toml", "--duration", "1", "--no-api")[0] == 2


def test_channel_table_error_is_one_line() -> None:
    from gswarm.notify.channels import load_channels

    with pytest.raises(ConfigError) as info:
        load_channels([], [{"name": "x"}, {"url": 5}])
    assert str(info.value) == ("notify_channels[0]: field url: field required; allowed keys: url, name, tags, kinds, "
                               "min_severity; notify_channels[1]: field url: input should be a valid string; allowed keys: "
                               "url, name, tags, kinds, min_severity")


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["logs"], ["report"], ["bundle", "--output", "b.tgz"]],
                         ids=lambda c: "-".join(c))
def test_reading_commands_leave_no_folder_behind_for_a_mistyped_state_dir(cli, tmp_path: Path, command: list[str]) -> None:
    """status, logs, report and bundle only read: a --state-dir that does not exist (a typo) is reported as
    holding nothing and is not created (it was, empty, by status/report/logs; bundle's doctor made backups/)."""
    code, out = cli(*command, "--state-dir", "typo/state")
    assert code == 0, out
    assert not (tmp_path / "typo").exists()
    if command == ["status"]:
        assert out == "no gswarm run has recorded anything in typo/state yet (start one with `gswarm run`, or pass --state-dir)"
    if command == ["logs"]:  # said nothing at all, like a filter that matched nothing
        assert out == "no JSON log in typo/state/logs yet (start a node with `gswarm run`, or pass --state-dir)"
