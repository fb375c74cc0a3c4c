"""Service files for ``gswarm service install``: a systemd unit (Linux) and a launchd agent plist (macOS).

Both run ``<python> -m gswarm run --state-dir D --config-file F`` in the foreground. The unit:

- ``Type=notify`` + ``NotifyAccess=main``: READY/STATUS/WATCHDOG come from GSwarm (:mod:`gswarm.daemon.systemd`),
  never from the node's children; ``WatchdogSec=180`` (GSwarm pings every 90 s from its event loop);
- ``Restart=on-failure`` with ``RestartSec=30`` and ``StartLimitIntervalSec=900``/``StartLimitBurst=5`` (systemd's
  100 ms default trips "Start request repeated too quickly"); ``RestartPreventExitStatus=2 3 6``: a bad
  configuration (2), another gswarm on the checkout (3) and a give-up (6, NodeFatal: GSwarm already decided
  restarting does not help, and alerted) are not restarted blindly;
- ``KillMode=mixed``: SIGTERM to GSwarm only, which stops the node's group gracefully; SIGKILL to what is
  left after ``TimeoutStopSec`` = ``stop_timeout`` + 30 s;
- secrets only through ``EnvironmentFile=-<state_dir>/service.env`` (0600), never in the unit.
launchd has no environment file: the plist holds no secret (keep them in the 0600 config file).
"""

from __future__ import annotations

import plistlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

WATCHDOG_SEC = 180
RESTART_SEC = 30
START_LIMIT_INTERVAL = 900
START_LIMIT_BURST = 5
NO_RESTART_CODES = (2, 3, 6)  # ConfigError, LockError, NodeFatal (gswarm.errors)
ENV_FILE = "service.env"


@dataclass(frozen=True)
class UnitSpec:
    """What a service file needs: ``name`` (unit ``<name>.service``, launchd label ``io.gswarm.<name>``),
    absolute ``python``, ``state_dir``, ``config_file``, ``workdir``, ``stop_timeout`` (seconds),
    ``system`` (system-wide unit, runs as ``user``)."""

    name: str
    python: Path
    state_dir: Path
    config_file: Path
    workdir: Path
    stop_timeout: float = 30.0
    system: bool = False
    user: str | None = None

    @property
    def argv(self) -> list[str]:
        return [str(self.python), "-m", "gswarm", "run", "--state-dir", str(self.state_dir), "--config-file", str(self.config_file)]

    @property
    def label(self) -> str:
        return f"io.gswarm.{self.name}"


_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def sd_quote(arg: str) -> str:
    """One ExecStart argument, quoted for systemd: ``%`` → ``%%`` (specifiers), ``$`` → ``$$`` (variables),
    anything with spaces, quotes or backslashes in double quotes with C escapes (systemd.service(5) "Command lines")."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _path_value(p: Path) -> str:
    """A path in a unit setting (specifiers escaped); systemd takes the rest of the line literally."""
    return str(p).replace("%", "%%")


def systemd_unit(spec: UnitSpec) -> str:
    """The unit file text (see the module docstring for every choice)."""
    codes = " ".join(str(c) for c in NO_RESTART_CODES)
    user = f"User={spec.user}\n" if spec.system and spec.user else ""
    target = "multi-user.target" if spec.system else "default.target"
    return f"""# Written by `gswarm service install`; `gswarm service uninstall` removes it. Edit with care:
# a reinstall rewrites this file.
[Unit]
Description=GSwarm supervisor for an RL Swarm node ({spec.name})
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec={START_LIMIT_INTERVAL}
StartLimitBurst={START_LIMIT_BURST}

[Service]
Type=notify
NotifyAccess=main
{user}WorkingDirectory={_path_value(spec.workdir)}
ExecStart={' '.join(sd_quote(a) for a in spec.argv)}
EnvironmentFile=-{_path_value(spec.state_dir / ENV_FILE)}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec={RESTART_SEC}
RestartPreventExitStatus={codes}
WatchdogSec={WATCHDOG_SEC}
TimeoutStartSec=300
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec={int(spec.stop_timeout) + 30}

[Install]
WantedBy={target}
"""


def launchd_plist(spec: UnitSpec) -> bytes:
    """The launchd agent plist (XML): KeepAlive unless the run ended cleanly, logs in ``<state_dir>/logs``."""
    logs = spec.state_dir / "logs"
    data = {
        "Label": spec.label,
        "ProgramArguments": spec.argv,
        "WorkingDirectory": str(spec.workdir),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_SEC,
        "ExitTimeOut": int(spec.stop_timeout) + 30,
        "ProcessType": "Background",
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        "StandardOutPath": str(logs / "service.out.log"),
        "StandardErrorPath": str(logs / "service.err.log"),
    }
    return plistlib.dumps(data)


def default_python() -> Path:
    """The interpreter running GSwarm now (the one that has it installed)."""
    return Path(sys.executable).absolute()
