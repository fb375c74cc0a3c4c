"""Sidecar processes next to the trainer: the modal-login server (``yarn start``) and ``ollama serve``.

Longer than ~150 lines: the generic sidecar (spawn in its own session, readiness probe,
group stop), the port-holder report and the two concrete sidecars share their helpers.

A sidecar is started in its own session (``start_new_session=True``), output appended to
a log file, probed on its HTTP port, kept across trainer restarts and stopped with the node
(SIGTERM to its group, ``stop_timeout`` seconds, then SIGKILL). GSwarm never signals a
process it did not start: a port already held by someone else is reported with pid and
command line (SetupError, exit 5).

modal-login facts (generations.md §2.4): ``yarn install [--immutable]``, ``yarn build`` (when
the checkout's script builds), ``yarn start`` (else ``yarn dev``) in ``modal-login/``, output
to ``logs/yarn.log``, port 3000. ``modal-login/.env`` line 3 (and 4 in E5) is rewritten with
the contract address like the script does; the original content is kept in
``<state_dir>/backups/<checkout-key>/modal-login.env.orig`` and written back by
:meth:`ModalLogin.stop` so the tracked file is not left modified.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import httpx
import psutil

from gswarm.clock import Clock, SystemClock
from gswarm.errors import SetupError
from gswarm.paths import atomic_write

MODAL_PORT, OLLAMA_PORT = 3000, 11434
SWARM_CONTRACTS = {"E1": "0x2fC68a233EF9E9509f034DD551FF90A79a0B8F82",
                   "E2A": "0x69C6e1D608ec64885E7b185d39b04B491a71768C", "E2B": "0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58",
                   "E3": "0xFaD7C5e93f28257429569B854151A1B8DCD404c2", "E4": "0xFaD7C5e93f28257429569B854151A1B8DCD404c2",
                   "E5": "0xFaD7C5e93f28257429569B854151A1B8DCD404c2", "E6": "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"}
PRG_CONTRACT = "0x51D4db531ae706a6eC732458825465058fA23a35"  # E5 08-26 → v0.6.4 (generations.md §2.4)


@dataclass(frozen=True)
class Holder:
    """A process listening on a port: ``pid`` (None when the OS hides it) and its command line."""

    pid: int | None
    command: str

    def describe(self) -> str:
        """``pid N (command)`` or a hint when the OS hides the owner."""
        return f"pid {self.pid} ({self.command})" if self.pid else "a process GSwarm cannot see (try `sudo ss -ltnp`)"


def port_holders(port: int) -> list[Holder]:
    """Processes listening on TCP ``port`` (psutil; AccessDenied tolerated → pid None)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        conns = []
        for proc in psutil.process_iter():
            try:
                conns += [c._replace(pid=proc.pid) for c in proc.net_connections(kind="tcp")]
            except (psutil.Error, OSError):
                continue
    out: dict[int | None, Holder] = {}
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
            out[c.pid] = Holder(c.pid, _cmdline(c.pid))
    return list(out.values())


def _cmdline(pid: int | None) -> str:
    if not pid:
        return "unknown"
    try:
        return " ".join(psutil.Process(pid).cmdline()) or psutil.Process(pid).name()
    except psutil.Error:
        return "unknown"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Sidecar:
    """One helper process GSwarm starts and owns.

    ``argv``/``cwd``/``env`` (env = full environment) as for Popen; output appended to
    ``log_path``; ``port`` is probed with GET ``probe_path`` (any HTTP answer = ready).
    """

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, log_path: Path, port: int,
                 env: Mapping[str, str] | None = None, probe_path: str = "/", clock: Clock | None = None) -> None:
        self.name, self.argv, self.cwd, self.log_path, self.port = name, list(argv), Path(cwd), Path(log_path), port
        self.env = dict(env if env is not None else os.environ)
        self.probe_path, self.clock = probe_path, clock or SystemClock()
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """Pid (= process group id) of the running or last sidecar process, or None."""
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        """True while the sidecar process GSwarm started is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> int:
        """Spawn unless running (idempotent). Raises SetupError when the port is held by another process."""
        if self.running():
            return self.proc.pid  # type: ignore[union-attr]
        self.check_port_free()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                raise SetupError(f"cannot start {self.name} ({' '.join(self.argv)}): {exc}") from None
        return self.proc.pid

    def check_port_free(self) -> None:
        holders = port_holders(self.port)
        if holders or port_in_use(self.port):
            who = ", ".join(h.describe() for h in holders) or "an unknown process"
            raise SetupError(f"port {self.port} needed by {self.name} is already held by {who}; GSwarm did not start it "
                             "and will not stop it. Stop that process (or the other node using it) and start again")

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.25) -> None:
        """Poll ``http://127.0.0.1:<port><probe_path>`` until it answers; SetupError on exit or timeout."""
        deadline = self.clock.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.probe_path}"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not self.running():
                    raise SetupError(f"{self.name} exited with status {self.proc.returncode if self.proc else '?'} "
                                     f"before answering on port {self.port}; see {self.log_path}")
                try:
                    await client.get(url)
                    return
                except httpx.HTTPError:
                    pass
                if self.clock.monotonic() >= deadline:
                    raise SetupError(f"{self.name} did not answer on port {self.port} within {timeout:g} s; see {self.log_path}")
                await self.clock.sleep(interval)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the sidecar's group, wait ``timeout`` s, then SIGKILL; returns the exit status (idempotent).

        The group is signalled only while its leader runs or members of it are left (then the
        group id cannot have been reused), so a long-dead sidecar's recycled id is never hit.
        """
        proc = self.proc
        if proc is None:
            return None
        pgid = proc.pid
        alive = lambda: proc.poll() is None or bool(_group_members(pgid))  # noqa: E731
        if alive():
            _killpg(pgid, signal.SIGTERM)
            deadline = self.clock.monotonic() + timeout
            while alive() and self.clock.monotonic() < deadline:
                await self.clock.sleep(0.05)
            if alive():
                _killpg(pgid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
        return proc.returncode


def _group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid`` (zombies excluded)."""
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                out.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return out


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


NODE_HINT = ("Node.js is not installed (modal-login needs it): install it from your distribution "
             "(`sudo apt install nodejs npm`, `brew install node`) or with nvm (`nvm install --lts`); "
             "GSwarm does not run installers for you")
YARN_HINT = ("yarn is not installed (modal-login needs it): run `npm install -g yarn` (or `corepack enable`), "
             "or install your distribution's package (`sudo apt install yarnpkg`)")


def env_lines(generation: str, swarm: str = "A", contract: str | None = None, prg: str | None = None) -> dict[int, str]:
    """Lines of ``modal-login/.env`` the script rewrites, as ``{line_number: "VAR=value"}`` (1-based).

    generations.md §2.4: E1 none; E2 line 3 ``SMART_CONTRACT_ADDRESS`` (swarm A/B); E3/E4 line 3
    ``SMART_CONTRACT_ADDRESS``; E5 line 3 ``SWARM_CONTRACT_ADDRESS`` + line 4 ``PRG_CONTRACT_ADDRESS``;
    E6 line 3 ``SWARM_CONTRACT_ADDRESS``. ``contract`` overrides the era's default address.
    """
    if generation not in ("E2", "E3", "E4", "E5", "E6"):
        return {}
    key = "E2" + ("B" if swarm == "B" else "A") if generation == "E2" else generation
    addr = contract or SWARM_CONTRACTS[key]
    var = "SMART_CONTRACT_ADDRESS" if generation in ("E2", "E3", "E4") else "SWARM_CONTRACT_ADDRESS"
    lines = {3: f"{var}={addr}"}
    if generation == "E5":
        lines[4] = f"PRG_CONTRACT_ADDRESS={prg or PRG_CONTRACT}"
    return lines


class ModalLogin:
    """The modal-login server of one checkout: tools check, build once per state, ``.env``, sidecar.

    ``port`` must stay 3000 for a real node (the Python side hard-codes it); tests pass a
    free port (given to the app as ``PORT``). ``env`` is the environment for yarn (PATH!).
    """

    def __init__(self, checkout: Path, state_dir: Path, generation: str, *, port: int = MODAL_PORT, swarm: str = "A",
                 contract: str | None = None, env: Mapping[str, str] | None = None, clock: Clock | None = None) -> None:
        from gswarm.rlswarm.identity import backup_dir

        self.checkout, self.generation, self.port = Path(checkout).resolve(), generation, port
        self.dir = self.checkout / "modal-login"
        self.env = {**(env if env is not None else os.environ), "PORT": str(port)}
        stand_ins = self.checkout / ".gswarm-emulator" / "tools"  # an emulated checkout's yarn/node (gswarm emulate init)
        if stand_ins.is_dir():
            self.env["PATH"] = str(stand_ins) + os.pathsep + self.env.get("PATH", "")
        self.lines = env_lines(generation, swarm, contract)
        self.store = backup_dir(state_dir, self.checkout)
        self.log_path = self.checkout / "logs" / "yarn.log"
        script = self.checkout / "run_rl_swarm.sh"
        text = script.read_text(errors="replace") if script.is_file() else "yarn build"
        self.builds = "yarn build" in text
        self.install_args = ["install", "--immutable"] if "--immutable" in text else ["install"]
        self.sidecar = Sidecar("modal-login server", [self._which("yarn") or "yarn", "start" if self.builds else "dev"],
                               self.dir, self.log_path, port, self.env, "/api/get-api-key-status", clock)

    def _which(self, name: str) -> str | None:
        return shutil.which(name, path=self.env.get("PATH"))

    def check_tools(self) -> None:
        """SetupError with install advice when ``node`` or ``yarn`` is missing, or ``modal-login/`` is."""
        if not self.dir.is_dir():
            raise SetupError(f"{self.dir} is missing: generation {self.generation} needs the modal-login app; update the checkout")
        if not self._which("node"):
            raise SetupError(NODE_HINT)
        if not self._which("yarn"):
            raise SetupError(YARN_HINT)

    def write_env(self) -> None:
        """Rewrite the era's ``.env`` lines, keeping the original once in the state dir (0600)."""
        env_file, orig = self.dir / ".env", self.store / "modal-login.env.orig"
        if not self.lines:
            return
        text = env_file.read_text() if env_file.is_file() else ""
        if not orig.exists():
            atomic_write(orig, json.dumps({"existed": env_file.is_file(), "text": text}), mode=0o600)
        lines = text.splitlines()
        for num, value in sorted(self.lines.items()):
            while len(lines) < num:
                lines.append("")
            lines[num - 1] = value
        atomic_write(env_file, "\n".join(lines) + "\n", mode=0o644)

    def restore_env(self) -> bool:
        """Write the original ``.env`` back (or remove it if it did not exist); True when restored."""
        orig = self.store / "modal-login.env.orig"
        if not orig.is_file():
            return False
        saved = json.loads(orig.read_text())
        if saved["existed"]:
            atomic_write(self.dir / ".env", saved["text"], mode=0o644)
        else:
            (self.dir / ".env").unlink(missing_ok=True)
        orig.unlink()
        return True

    def _digest(self) -> str:
        h = hashlib.sha256()
        for name in ("package.json", "yarn.lock", ".env"):
            p = self.dir / name
            h.update(p.read_bytes() if p.is_file() else b"-")
        for root, dirs, files in os.walk(self.dir):
            dirs[:] = sorted(d for d in dirs if d not in ("node_modules", ".next", "temp-data"))
            for f in sorted(set(files) - {".env"}):  # .env content is hashed above; GSwarm rewrites it
                st = os.stat(os.path.join(root, f))
                h.update(f"{root}/{f}:{st.st_mtime_ns}:{st.st_size}".encode())
        h.update(str((self.dir / "node_modules").is_dir()).encode())
        return h.hexdigest()

    def build(self, force: bool = False) -> bool:
        """``yarn install`` (+ ``yarn build``) unless the stamp matches; True when yarn ran. SetupError on failure."""
        stamp = self.store / "modal-build.json"
        digest = self._digest()
        try:
            if not force and json.loads(stamp.read_text()).get("digest") == digest:
                return False
        except (OSError, ValueError):
            pass
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for args in [self.install_args] + ([["build"]] if self.builds else []):
            with open(self.log_path, "ab") as log:
                code = subprocess.run([self._which("yarn") or "yarn", *args], cwd=self.dir, env=self.env,
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
            if code != 0:
                raise SetupError(f"`yarn {' '.join(args)}` in {self.dir} failed (exit {code}); see {self.log_path}")
        atomic_write(stamp, json.dumps({"digest": self._digest()}), mode=0o600)
        return True

    async def start(self, ready_timeout: float = 120.0) -> int:
        """Check tools, write ``.env``, build if needed, start ``yarn start`` and wait for the port. Returns the pid."""
        if self.sidecar.running():
            return self.sidecar.pid  # type: ignore[return-value]
        self.check_tools()
        await asyncio.to_thread(self.stop_orphan)
        self.sidecar.check_port_free()
        self.write_env()
        await asyncio.to_thread(self.build)
        pid = self.sidecar.start()
        record = {"pid": pid, "create_time": psutil.Process(pid).create_time(), "argv": self.sidecar.argv}
        atomic_write(self.store / "modal-sidecar.json", json.dumps(record), mode=0o600)
        await self.sidecar.wait_ready(ready_timeout)
        return pid

    def stop_orphan(self, timeout: float = 10.0) -> bool:
        """Stop the server group a killed GSwarm left behind (pid + start time must match the record).

        Returns True when one was stopped. A recycled pid (other start time) is never signalled.
        """
        rec_path = self.store / "modal-sidecar.json"
        try:
            rec = json.loads(rec_path.read_text())
            proc = psutil.Process(int(rec["pid"]))
            ours = abs(proc.create_time() - float(rec["create_time"])) < 0.01 and os.getpgid(proc.pid) == proc.pid
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            rec_path.unlink(missing_ok=True)
            return False
        if ours:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        rec_path.unlink(missing_ok=True)
        return ours

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the server's group and put the tracked ``.env`` back."""
        await self.sidecar.stop(timeout)
        (self.store / "modal-sidecar.json").unlink(missing_ok=True)
        self.restore_env()


OLLAMA_HINT = ("ollama is not installed (E6 needs an ollama server on port 11434): install it with your package manager "
               "or from https://ollama.com/download (read the install script before running it; GSwarm never pipes it "
               "into a shell), `brew install ollama` on macOS, or use the Docker path (`docker compose up ollama` from the "
               "checkout) and set OLLAMA_HOST")


async def ollama_answers(port: int = OLLAMA_PORT, host: str = "127.0.0.1") -> bool:
    """True when ``GET http://host:port/api/tags`` answers 200 (E6 reward model server)."""
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(f"http://{host}:{port}/api/tags")).status_code == 200
    except httpx.HTTPError:
        return False


async def ensure_ollama(checkout: Path, *, port: int = OLLAMA_PORT, env: Mapping[str, str] | None = None,
                        clock: Clock | None = None, ready_timeout: float = 60.0) -> Sidecar | None:
    """E6: make sure ollama answers. Returns the Sidecar GSwarm started, or None when one already ran.

    Raises SetupError with install advice when ``ollama`` is not on PATH (generations.md §9).
    """
    if await ollama_answers(port):
        return None
    env = dict(env if env is not None else os.environ)
    exe = shutil.which("ollama", path=env.get("PATH"))
    if not exe:
        raise SetupError(OLLAMA_HINT)
    env["OLLAMA_HOST"] = f"127.0.0.1:{port}"
    car = Sidecar("ollama server", [exe, "serve"], Path(checkout), Path(checkout) / "logs" / "ollama.log", port, env,
                  "/api/tags", clock)
    car.start()
    await car.wait_ready(ready_timeout)
    return car


class SidecarKeeper:
    """Runtime service: every ``interval`` s revive dead sidecars of a prepared node; stop them on shutdown.

    ``prepared`` is a :class:`gswarm.rlswarm.login.PreparedNode` (anything with async
    ``revive() -> list[str]`` and ``close()``). Each revival is published as a Notice.
    Never raises out of :meth:`run`; cancelling it closes the sidecars (they stop with the node).
    """

    name = "sidecars"

    def __init__(self, prepared, clock: Clock | None = None, bus=None, node: str = "default", interval: float = 10.0) -> None:
        self.prepared, self.clock, self.bus, self.node, self.interval = prepared, clock or SystemClock(), bus, node, interval

    async def run(self) -> None:
        """Check every ``interval`` s until cancelled; on cancel stop the sidecars and re-raise."""
        import logging

        from gswarm.events import Notice, Severity

        log = logging.getLogger(__name__)
        try:
            while True:
                await self.clock.sleep(self.interval)
                try:
                    for note in await self.prepared.revive():
                        log.warning(note)
                        if self.bus is not None:
                            self.bus.publish(Notice(self.node, self.clock.time(), "sidecar", Severity.WARNING, note))
                except Exception as exc:  # a failed revival is retried at the next tick
                    log.warning("sidecar check failed: %s", exc)
                    if self.bus is not None:
                        self.bus.publish(Notice(self.node, self.clock.time(), "sidecar", Severity.ERROR,
                                                "sidecar could not be restarted", str(exc)))
        except asyncio.CancelledError:
            try:
                await self.prepared.close()
            except Exception as exc:
                log.warning("stopping sidecars failed: %s", exc)
            raise


def create_service(rt) -> SidecarKeeper | None:
    """Factory for the runtime: a keeper for ``rt.prepared`` (set by the runtime from ``prepare_node``), else None."""
    prepared = getattr(rt, "prepared", None)
    if prepared is None:
        return None
    return SidecarKeeper(prepared, rt.clock, rt.bus, rt.node)
