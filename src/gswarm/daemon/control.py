"""The control socket: ``<state_dir>/control.sock`` (0600), one JSON request and one JSON answer per connection.

Request (one line of JSON): ``{"verb": "ping"|"status"|"start"|"stop"|"restart"|"reload", "node": str|None,
"wait": float}`` — ``node`` None means "the node this supervisor runs" (a multi-node host, issue #15, acts on
the named one, refuses start/stop/restart without a name, and adds ``"snapshots"`` of every node to a
status/ping without a name); ``wait`` is how long (seconds, 0..300) to wait for the state the verb aims at before answering.
Answer (one line of JSON): ``{"ok": bool, "verb", "node", "state", "message", "pid"}`` (+ ``"reload"`` for
reload: see :mod:`gswarm.daemon.reload`). A refused verb (unknown node, start of a running node, stop of a
stopped one) answers ``ok: false`` with a message saying why and what to do.

start/stop/restart post ``Command(kind, "cli")`` on the runtime's queue, so the watcher records them as
requested ("stop requested by cli"), never as failures. Only the owner can connect: the socket is chmod
0600 inside the 0700 state directory. A stale socket file (a killed gswarm) is replaced; a live one held
by another supervisor is left alone (logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from gswarm.events import StateChanged

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_PATH = 107  # sun_path holds 108 bytes with the terminating NUL (Linux; macOS: 104)
START_FROM = frozenset({"STOPPED", "FATAL", "BACKOFF"})
STOPPED = frozenset({"STOPPED", "FATAL"})
VERBS = ("ping", "status", "start", "stop", "restart", "reload")


def socket_path(state_dir: Path) -> Path:
    """``<state_dir>/control.sock``."""
    return Path(state_dir) / SOCKET_NAME


def socket_alive(path: Path, timeout: float = 1.0) -> bool:
    """True when something accepts connections on the unix socket ``path`` (a running supervisor)."""
    if len(os.fsencode(str(path))) > MAX_PATH or not path.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ControlServer:
    """Serves the control socket of runtime ``rt`` (a Service: ``name``, ``async run()``).

    ``reloader``: ``async (rt) -> dict`` run for the ``reload`` verb (default :func:`gswarm.daemon.reload.reload`).
    """

    name = "control"

    def __init__(self, rt: Any, reloader: Any = None) -> None:
        self.rt = rt
        self.path = socket_path(rt.state_dir)
        self.reloader = reloader
        self.served = 0

    async def run(self) -> None:
        """Serve until cancelled; removes the socket file it created. Never raises out."""
        if len(os.fsencode(str(self.path))) > MAX_PATH:
            log.warning("control socket disabled: %s is longer than %d bytes; use a shorter --state-dir "
                        "(gswarm stop/start/restart/reload need it)", self.path, MAX_PATH)
            return
        if self.path.exists() or self.path.is_symlink():
            if socket_alive(self.path):
                log.warning("control socket %s is served by another running gswarm; this one has none", self.path)
                return
            self.path.unlink(missing_ok=True)
        try:
            server = await asyncio.start_unix_server(self._client, path=str(self.path))
            os.chmod(self.path, 0o600)
        except OSError as exc:
            log.warning("control socket %s not served: %s", self.path, exc)
            return
        try:
            await asyncio.Future()  # until cancelled
        finally:
            server.close()
            self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                req = json.loads(line or b"{}")
                if not isinstance(req, dict):
                    raise ValueError("not an object")
            except ValueError:
                answer = {"ok": False, "message": "bad request: send one line of JSON {\"verb\": ..., \"node\": ...}"}
            else:
                answer = await self.handle(req)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except Exception:  # a broken client must never hurt the supervisor
            log.debug("control client failed", exc_info=True)
        finally:
            writer.close()
        self.served += 1

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Act on one request (shape in the module docstring) and return the answer."""
        verb, node = req.get("verb"), req.get("node")
        rt = self.rt
        if verb not in VERBS:
            return {"ok": False, "verb": verb, "message": f"unknown verb {verb!r}; use one of {', '.join(VERBS)}"}
        runtimes = getattr(rt, "runtimes", None)
        if isinstance(runtimes, dict) and len(runtimes) > 1:  # a gswarm.host.Host with several nodes (#15)
            names = ", ".join(runtimes)
            if node not in (None, "") and node not in runtimes:
                return {"ok": False, "verb": verb, "node": node,
                        "message": f"unknown node {node!r}: this supervisor runs {names} (pass one of them)"}
            if node in (None, "") and verb in ("start", "stop", "restart"):
                return {"ok": False, "verb": verb, "node": None,
                        "message": f"this supervisor runs {names}: name the node (e.g. gswarm {verb} {next(iter(runtimes))})"}
            if node not in (None, ""):
                rt = runtimes[node]
        elif node not in (None, "", rt.node):
            return {"ok": False, "verb": verb, "node": node,
                    "message": f"unknown node {node!r}: this supervisor runs {rt.node!r} (omit NODE or pass {rt.node})"}
        try:
            wait = min(max(float(req.get("wait", 0) or 0), 0.0), 300.0)
        except (TypeError, ValueError):
            wait = 0.0
        if verb == "reload":
            from gswarm.daemon.reload import reload

            result = await (self.reloader or reload)(self.rt)
            return {**self._answer(verb, True, result["message"]), "reload": result}
        if verb in ("ping", "status"):
            out = {**self._answer(verb, True, "running", rt), "snapshot": rt.snapshot(), "pid_gswarm": os.getpid()}
            if rt is self.rt and callable(getattr(rt, "snapshots", None)):
                out["snapshots"] = rt.snapshots()  # every node of the host
            return out
        refused = refusal(verb, rt.node, rt.snapshot()["state"])
        if refused:
            return self._answer(verb, False, refused, rt)
        return await self._command(verb, wait, rt)

    async def _command(self, verb: str, wait: float, rt: Any = None) -> dict[str, Any]:
        """Post the command to node ``rt`` (default: this supervisor's) and wait (up to ``wait`` s,
        monotonic) for the state the verb aims at."""
        rt, seen = rt or self.rt, []
        unsubscribe = rt.bus.subscribe(lambda e: seen.append(e.new.value if hasattr(e.new, "value") else str(e.new))
                                       if isinstance(e, StateChanged) and e.node == rt.node else None)
        try:
            rt.request(verb, "cli")
            deadline = rt.clock.monotonic() + wait
            while wait > 0 and not reached(verb, seen) and rt.clock.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            unsubscribe()
        state = rt.snapshot()["state"]
        done = reached(verb, seen)
        msg = (f"{verb} done: node {rt.node} is {state}" if done
               else f"{verb} requested: node {rt.node} is {state}" + (" (still working on it)" if wait else ""))
        return self._answer(verb, True, msg, rt)

    def _answer(self, verb: str, ok: bool, message: str, rt: Any = None) -> dict[str, Any]:
        rt = rt or self.rt
        snap = rt.snapshot()
        return {"ok": ok, "verb": verb, "node": rt.node, "state": snap["state"], "pid": snap["pid"], "message": message}


def refusal(verb: str, node: str, state: str) -> str | None:
    """Why ``verb`` does not apply to a node in ``state`` (a NodeState value), or None.

    Same rules as the API (``gswarm.api.routes_control``): start only from STOPPED/FATAL/BACKOFF, stop
    not when STOPPED/FATAL, restart always."""
    if verb == "start" and state not in START_FROM:
        return f"node {node} is {state}; start only applies to a stopped node (use `gswarm restart` to restart it)"
    if verb == "stop" and state in STOPPED:
        return f"node {node} is already {state}; there is nothing to stop"
    return None


def reached(verb: str, seen: list[str]) -> bool:
    """Whether the state changes ``seen`` since the request complete ``verb``: stop → STOPPED/FATAL;
    start → RUNNING (or BACKOFF/FATAL: it failed); restart → a new STARTING followed by one of those."""
    if verb == "stop":
        return any(s in STOPPED for s in seen)
    if verb == "restart":
        if "STARTING" not in seen:
            return False
        seen = seen[seen.index("STARTING"):]
    return any(s in ("RUNNING", "BACKOFF", "FATAL") for s in seen)
