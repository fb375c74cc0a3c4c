"""Client side of the control socket (:mod:`gswarm.daemon.control`), and which state dir a command means.

:func:`request` sends one request and returns the answer; :class:`NotRunning` (exit code 1) says that no
supervisor answers on that state dir and how to start one. :func:`running_state_dir` picks the state dir
for control verbs and for ``gswarm status`` / ``gswarm logs``: an explicit one (flag, env, config file)
wins; else the state dir of the installed service (its manifest, :mod:`gswarm.daemon.install`) when its
supervisor answers; else the default.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from gswarm.daemon.control import MAX_PATH, socket_alive, socket_path
from gswarm.errors import GSwarmError

HOW_TO_START = ("start one with `gswarm run` (foreground) or `gswarm service install` (runs it as a service), "
                "or pass the --state-dir of the running one")


class NotRunning(GSwarmError):
    """No supervisor answers on the control socket of a state dir."""

    exit_code = 1


def request(state_dir: Path, verb: str, node: str | None = None, wait: float = 0.0) -> dict[str, Any]:
    """Send ``{"verb", "node", "wait"}`` to the supervisor of ``state_dir``; returns its answer (dict).

    Raises NotRunning when nothing answers (no socket, refused, stale file) and GSwarmError for a broken
    answer or a timeout (``wait`` + 30 s)."""
    path = socket_path(state_dir)
    if len(os.fsencode(str(path))) > MAX_PATH:
        raise GSwarmError(f"control socket path {path} is longer than {MAX_PATH} bytes, so the supervisor could not "
                          "create it; use a shorter --state-dir (or the API: POST /api/v1/nodes/<node>/<verb>)")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(wait + 30.0)
    try:
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            pid = starting_pid(state_dir)
            if pid is not None:
                raise NotRunning(f"gswarm run (pid {pid}) holds state dir {state_dir} but does not take commands yet: it "
                                 "is still preparing the node or waiting for the login (see its output or journalctl); "
                                 "try again once the node has started") from None
            raise NotRunning(f"no gswarm supervisor is running for state dir {state_dir}; {HOW_TO_START}") from None
        except PermissionError:
            raise GSwarmError(f"control socket {path} belongs to another user; run this as the user running gswarm") from None
        s.sendall(json.dumps({"verb": verb, "node": node, "wait": wait}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise GSwarmError(f"the supervisor for {state_dir} did not answer {verb!r} within {wait + 30:.0f} s") from None
    finally:
        s.close()
    try:
        answer = json.loads(data)
    except ValueError:
        raise GSwarmError(f"the supervisor for {state_dir} sent a broken answer to {verb!r}; see its log") from None
    return answer if isinstance(answer, dict) else {"ok": False, "message": "broken answer"}


def starting_pid(state_dir: Path) -> int | None:
    """The pid of a live ``gswarm run`` holding a checkout lock in ``state_dir`` (None when none): one that
    has not opened its control socket yet (setup, login)."""
    from gswarm.monitor.status import supervisors

    alive = [s for s in supervisors(Path(state_dir)) if s["alive"]]
    return alive[0]["pid"] if alive else None


def service_state_dir() -> Path | None:
    """The state dir of the installed service when its supervisor runs now (answers, or is still starting), else None."""
    from gswarm.daemon.install import find_manifest

    manifest = find_manifest()
    if not manifest or not manifest.get("state_dir"):
        return None
    sdir = Path(manifest["state_dir"])
    return sdir if socket_alive(socket_path(sdir)) or starting_pid(sdir) is not None else None


def running_state_dir(settings: Any) -> Path:
    """The state dir a control/status command addresses (see the module docstring; not created)."""
    from gswarm.paths import state_dir as resolve

    if settings.state_dir is None:
        found = service_state_dir()
        if found is not None:
            return found
    return resolve(settings.state_dir, writable=False)
