"""``gswarm service install|uninstall|status`` (issue #14): generated units pass ``systemd-analyze verify``,
the launchd plist round-trips through plistlib, install is idempotent and uninstall removes only its files."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gswarm.daemon import install as inst
from gswarm.daemon import units
from gswarm.errors import ConfigError
from tests.helpers import run_cli

PY = units.default_python()


def spec(tmp_path: Path, **kw) -> units.UnitSpec:  # type: ignore[no-untyped-def]
    return units.UnitSpec("gswarm", PY, tmp_path / "state dir %h", tmp_path / "c.toml", tmp_path, 45.0, **kw)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing: apt-get install systemd (Debian) to verify generated units")
@pytest.mark.parametrize("system", [False, True])
def test_generated_units_pass_systemd_analyze_verify(tmp_path: Path, system: bool) -> None:
    s = spec(tmp_path, system=system, user="root" if system else None)
    unit = tmp_path / "gswarm.service"
    unit.write_text(units.systemd_unit(s))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on settings it ignores, so any complaint about our file counts as a failure
    complaints = [line for line in (p.stdout + p.stderr).splitlines() if "gswarm.service" in line]
    assert (p.returncode, complaints) == (0, [])
    text = unit.read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=180", "Restart=on-failure", "RestartSec=30",
                 "StartLimitIntervalSec=900", "StartLimitBurst=5", "KillMode=mixed", "TimeoutStopSec=75",
                 "RestartPreventExitStatus=2 3 6", f'ExecStart={PY} -m gswarm run --state-dir "{tmp_path}/state dir %%h" '
                 f"--config-file {tmp_path}/c.toml", f"EnvironmentFile=-{tmp_path}/state dir %%h/service.env"):
        assert line + "\n" in text, line
    assert ("User=root\n" in text) is system
    assert ("WantedBy=multi-user.target" if system else "WantedBy=default.target") in text


def test_sd_quote() -> None:
    assert units.sd_quote("/a/b") == "/a/b"
    assert units.sd_quote('a b"c\\') == '"a b\\"c\\\\"'
    assert units.sd_quote("100%$HOME") == '"100%%$$HOME"'  # $$ and %% are systemd's own escapes


def test_launchd_plist_round_trips(tmp_path: Path) -> None:
    s = spec(tmp_path)
    data = plistlib.loads(units.launchd_plist(s))
    assert data == {
        "Label": "io.gswarm.gswarm",
        "ProgramArguments": [str(PY), "-m", "gswarm", "run", "--state-dir", str(tmp_path / "state dir %h"),
                             "--config-file", str(tmp_path / "c.toml")],
        "WorkingDirectory": str(tmp_path), "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30, "ExitTimeOut": 75, "ProcessType": "Background",
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        "StandardOutPath": str(tmp_path / "state dir %h" / "logs" / "service.out.log"),
        "StandardErrorPath": str(tmp_path / "state dir %h" / "logs" / "service.err.log"),
    }


def test_install_is_idempotent_and_uninstall_removes_only_its_files(tmp_path: Path) -> None:
    s = spec(tmp_path)
    target = tmp_path / "units"
    env = {"GSWARM_HF_TOKEN": "hf_sekrit", "HOME": str(tmp_path)}
    plan = inst.plan_install(s, "systemd-user", target, env=env, config_text="node_name = 'x'\n")
    rc, lines = inst.apply_install(plan)
    assert rc == 0
    envfile = s.state_dir / "service.env"
    assert stat.S_IMODE(envfile.stat().st_mode) == 0o600 and "GSWARM_HF_TOKEN=hf_sekrit\n" in envfile.read_text()
    assert stat.S_IMODE(s.config_file.stat().st_mode) == 0o600
    assert "hf_sekrit" not in (target / "gswarm.service").read_text()
    assert [ln for ln in lines if ln.startswith(("wrote", "not run"))] == [
        f"wrote: {target / 'gswarm.service'}", f"wrote: {s.config_file}", f"wrote: {envfile}",
        "not run (--target-dir): systemctl --user daemon-reload",
        "not run (--target-dir): systemctl --user enable --now gswarm.service"] + (
        [] if Path(f"/var/lib/systemd/linger/{os.environ.get('USER', 'root')}").exists() else
        [f"not run (--target-dir): loginctl enable-linger {__import__('getpass').getuser()}"])
    rc, again = inst.apply_install(inst.plan_install(s, "systemd-user", target, env=env, config_text="node_name = 'x'\n"))
    assert [ln for ln in again if ln.startswith(("wrote", "unchanged", "kept"))] == [
        f"unchanged: {target / 'gswarm.service'}", f"unchanged: {s.config_file}", f"unchanged: {envfile}"]
    s.config_file.write_text("node_name = 'mine now'\n")  # the operator edits the config: uninstall keeps it
    keep = tmp_path / "units" / "other.service"
    keep.write_text("[Unit]\n")
    rc, out = inst.uninstall(target / "gswarm-service.json", run_commands=False)
    assert [ln for ln in out if not ln.startswith("not run")] == [
        f"removed: {target / 'gswarm.service'}", f"kept (changed since install): {s.config_file}",
        f"removed: {envfile}", f"removed: {target / 'gswarm-service.json'}"]
    assert keep.exists() and s.config_file.exists()
    with pytest.raises(ConfigError, match="no gswarm service is installed"):
        inst.uninstall(target / "gswarm-service.json", run_commands=False)


def test_install_refuses_a_unit_it_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / "units"
    target.mkdir()
    (target / "gswarm.service").write_text("[Service]\nExecStart=/bin/true\n")
    plan = inst.plan_install(spec(tmp_path), "systemd-user", target, env={})
    with pytest.raises(ConfigError, match="exists and was not written by gswarm service install; move it away or pass another --name"):
        inst.apply_install(plan)
    assert (target / "gswarm.service").read_text() == "[Service]\nExecStart=/bin/true\n"


def test_cli_dry_run_prints_files_and_commands_without_secrets(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GSWARM_HF_TOKEN", "hf_sekrit")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    sdir = tmp_path / "st"
    code, out = run_cli(capsys, "service", "install", "--dry-run", "--state-dir", str(sdir), "--rl-swarm-dir", str(tmp_path),
                        "--not-a-checkout")
    assert code == 0
    assert "hf_sekrit" not in out
    assert "# 1 secret(s) from the environment (GSWARM_HF_TOKEN, GSWARM_API_TOKEN); values not shown" in out
    assert f"would run: systemctl --user enable --now gswarm.service" in out
    assert f"ExecStart={PY} -m gswarm run --state-dir {sdir} --config-file {sdir}/gswarm.toml" in out
    assert not (tmp_path / "xdg").exists() and not (sdir / "gswarm.toml").exists()
    code, out = run_cli(capsys, "service", "install", "--dry-run", "--launchd", "--state-dir", str(sdir), "--not-a-checkout")
    assert code == 0 and "<key>KeepAlive</key>" in out and "would run: launchctl bootstrap" in out


def test_cli_status_and_uninstall_through_target_dir(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sdir, target = tmp_path / "st", tmp_path / "units"
    code, out = run_cli(capsys, "service", "install", "--target-dir", str(target), "--state-dir", str(sdir),
                        "--rl-swarm-dir", str(tmp_path), "--not-a-checkout")
    assert code == 0, out
    assert f"rl_swarm_dir = '{tmp_path}'" in (sdir / "gswarm.toml").read_text()
    code, out = run_cli(capsys, "service", "status", "--target-dir", str(target))
    assert code == 3
    assert "supervisor not running; start it with `systemctl --user start gswarm`" in out
    code, out = run_cli(capsys, "service", "uninstall", "--target-dir", str(target))
    assert code == 0 and not (target / "gswarm.service").exists() and not (sdir / "gswarm.toml").exists()


def test_failed_commands_are_reported_with_a_hint(tmp_path: Path) -> None:
    plan = inst.plan_install(spec(tmp_path), "systemd-user", tmp_path / "units", env={})
    plan.run_commands = True  # the commands go to the runner below, not to this machine's systemctl
    calls = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "Failed to connect to bus:\n No medium found\n")

    rc, lines = inst.apply_install(plan, runner)
    assert rc == 1 and calls[:2] == [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "gswarm.service"]]
    assert "FAILED (1): systemctl --user daemon-reload: Failed to connect to bus: No medium found" in lines
    assert lines[lines.index("FAILED (1): systemctl --user daemon-reload: Failed to connect to bus: No medium found") + 1] == (
        "hint: systemctl --user needs the user's own systemd session: log in as that user over SSH (not su/sudo -u), "
        "or install with sudo ... --system")
