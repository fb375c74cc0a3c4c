"""A stand-in for RL Swarm's modal-login Next.js app (tests, demos; no Alchemy, no chain).

Answers the routes of ``modal-login/app/api/*`` (generations.md §2.4, onchain.md §3) on
127.0.0.1 and keeps ``<checkout>/modal-login/temp-data/{userData,userApiKey}.json`` in the
real formats. Switches simulate trouble: ``never_activate`` (status stays ``pending``),
``fail_status`` 500/502 on every ``/api`` route. ``auto_login`` performs the browser's two
calls by itself after ``login_delay`` seconds (for unattended demos).

Run: ``python -m gswarm.emulator.modal_server --port P --checkout DIR [--never-activate]
[--fail-status 500] [--auto-login] [--login-delay S]``. ``PORT`` in the environment is the
default port (``next start`` honours it too). :func:`write_fake_yarn` writes a ``yarn``
executable whose ``start``/``dev`` runs this server from ``modal-login/`` (checkout = parent)
and whose ``install``/``build`` succeed, so an emulated checkout can be driven like a real one.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import stat
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

PAGE = b"""<!doctype html><title>Sign in (GSwarm emulator)</title><h1>modal-login stand-in</h1>
<button onclick="login()">Log in (emulated)</button><p id=s></p><script>
async function login(){const r=await fetch('/api/get-api-key',{method:'POST',body:JSON.stringify({whoamiStamp:'x'})});
const k=await r.json();const o=k.orgId;await fetch('/api/set-api-key-activated',{method:'POST',
body:JSON.stringify({orgId:o,apiKey:k.publicKey,deferredActionDigest:'0x00',accountAddress:'0x00',initCode:'0x00'})});
document.getElementById('s').textContent='logged in as '+o}</script>"""
COORD_ROUTES = ("register-peer", "submit-reward", "submit-winner", "guess-answer", "claim-reward")


class ModalState:
    """The temp-data files of one checkout plus the simulation switches."""

    def __init__(self, checkout: Path, never_activate: bool = False, fail_status: int | None = None) -> None:
        self.dir = Path(checkout) / "modal-login" / "temp-data"
        self.never_activate = never_activate
        self.fail_status = fail_status
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict]] = []

    def _read(self, name: str) -> dict:
        try:
            data = json.loads((self.dir / name).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write(self, name: str, data: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.dir / name)

    def create_key(self, email: str = "node@example.org") -> dict:
        """``POST /api/get-api-key``: new user (only the current one kept) + appended inactive key."""
        with self.lock:
            org = self._read("userData.json") and next(iter(self._read("userData.json")))
            org = org or f"org-{secrets.token_hex(6)}"
            self._write("userData.json", {org: {"orgId": org, "address": "0x" + secrets.token_hex(20),
                                                "userId": secrets.token_hex(8), "email": email}})
            keys = self._read("userApiKey.json")
            entry = {"publicKey": "0x" + secrets.token_hex(20), "privateKey": "0x" + secrets.token_hex(32),
                     "createdAt": datetime.now(timezone.utc).isoformat(), "activated": False}
            keys.setdefault(org, []).append(entry)
            self._write("userApiKey.json", keys)
            return {"publicKey": entry["publicKey"], "orgId": org}

    def activate(self, org: str) -> bool:
        """``POST /api/set-api-key-activated``: mark the last key activated (unless never_activate)."""
        with self.lock:
            keys = self._read("userApiKey.json")
            if not keys.get(org):
                return False
            if not self.never_activate:
                keys[org][-1].update(activated=True, deferredActionDigest="0x" + "00" * 32,
                                     accountAddress="0x" + secrets.token_hex(20), initCode="0x00")
                self._write("userApiKey.json", keys)
            return True

    def status(self, org: str) -> str:
        """``GET /api/get-api-key-status``: ``activated`` when the last key of ``org`` is, else ``pending``."""
        keys = self._read("userApiKey.json").get(org) or []
        return "activated" if keys and isinstance(keys[-1], dict) and keys[-1].get("activated") else "pending"

    def coordinator(self, org: str | None) -> tuple[int, dict]:
        """Register/submit routes: 400 without orgId, 404 unknown user, 500 no activated key."""
        if not org:
            return 400, {"error": "bad request"}
        if org not in self._read("userData.json"):
            return 404, {"error": "user not found"}
        if self.status(org) != "activated":
            return 500, {"error": "api key not found"}
        return 200, {"hash": "0x" + secrets.token_hex(32)}


def _handler(state: ModalState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args) -> None:  # to stdout like next start
            print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)

        def _send(self, code: int, body: dict | str | bytes, ctype: str = "application/json") -> None:
            raw = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
            if isinstance(body, str):
                ctype = "text/plain; charset=utf-8"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _fail(self) -> bool:
            if state.fail_status and self.path.startswith("/api/"):
                self._send(state.fail_status, {"error": "An unexpected error occurred"} if state.fail_status == 500 else "Bad Gateway")
                return True
            return False

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if self._fail():
                return
            if url.path == "/api/get-api-key-status":
                org = (parse_qs(url.query).get("orgId") or [""])[0]
                if not org:
                    return self._send(400, {"json": {"error": "bad request"}})
                return self._send(200, state.status(org))
            if url.path in ("/", "/index.html"):
                return self._send(200, PAGE, "text/html; charset=utf-8")
            self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                body = body if isinstance(body, dict) else {}
            except ValueError:
                body = {}
            route = urlparse(self.path).path.removeprefix("/api/")
            state.calls.append((route, {k: v for k, v in body.items() if k != "apiKey"}))
            if self._fail():
                return
            if route == "get-api-key":
                return self._send(200, state.create_key(str(body.get("email") or "node@example.org")))
            if route == "set-api-key-activated":
                ok = state.activate(str(body.get("orgId") or ""))
                return self._send(200 if ok else 400, {"activated": True} if ok else {"json": {"error": "bad request"}})
            if route in COORD_ROUTES:
                return self._send(*state.coordinator(body.get("orgId")))
            if route == "bet-token-balance":
                code, data = state.coordinator(body.get("orgId"))
                return self._send(code, {"result": "1000"} if code == 200 else data)
            self._send(404, {"error": "not found"})

    return Handler


class ModalServer:
    """The stand-in server in a background thread: ``start()`` → ``url``; ``stop()``.

    ``port=0`` picks a free port. Binds 127.0.0.1 only.
    """

    def __init__(self, checkout: Path, port: int = 0, **switches) -> None:
        self.state = ModalState(Path(checkout), **switches)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.state))
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "ModalServer":
        """Serve in a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def login(self, email: str = "node@example.org") -> str:
        """What the browser does after sign-in: create the key, then activate it. Returns orgId."""
        org = self.state.create_key(email)["orgId"]
        self.state.activate(org)
        return org


def write_fake_yarn(bin_dir: Path, python: str | None = None) -> Path:
    """Write an executable ``yarn`` into ``bin_dir`` that behaves like yarn for GSwarm's uses.

    ``yarn install``/``yarn build`` print a line and exit 0 (``YARN_FAIL=install|build``
    makes that step exit 1); ``yarn start``/``yarn dev`` exec this server with
    ``--checkout ..`` (cwd is ``modal-login/``) and ``--port $PORT`` (default 3000).
    ``MODAL_ARGS`` adds switches (e.g. ``--never-activate``). Returns the path.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "yarn"
    path.write_text(f"""#!{python or sys.executable}
import os, sys
cmd = (sys.argv[1:] or ["install"])[0]
if cmd in ("start", "dev"):
    args = [sys.executable, "-m", "gswarm.emulator.modal_server", "--checkout", "..",
            "--port", os.environ.get("PORT", "3000")] + os.environ.get("MODAL_ARGS", "").split()
    os.execv(sys.executable, args)
print(f"yarn {{cmd}} (GSwarm emulator)", flush=True)
sys.exit(1 if os.environ.get("YARN_FAIL") == cmd else 0)
""")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def write_fake_node(bin_dir: Path) -> Path:
    """Write an executable ``node`` into ``bin_dir`` that answers ``node --version`` (``v20.18.0``) and nothing
    else: GSwarm only checks that Node.js exists before it runs ``yarn`` (the fake yarn needs no Node). Returns the path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "node"
    path.write_text("#!/bin/sh\n"
                    "[ \"$1\" = --version ] && { echo v20.18.0; exit 0; }\n"
                    "echo 'node (GSwarm emulator): only --version is emulated' >&2; exit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m gswarm.emulator.modal_server", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    ap.add_argument("--checkout", type=Path, default=Path(".."))
    ap.add_argument("--never-activate", action="store_true")
    ap.add_argument("--fail-status", type=int, choices=(500, 502))
    ap.add_argument("--auto-login", action="store_true")
    ap.add_argument("--login-delay", type=float, default=0.0)
    args = ap.parse_args(argv)
    server = ModalServer(args.checkout, args.port, never_activate=args.never_activate, fail_status=args.fail_status)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.httpd.shutdown).start())
    if args.auto_login:
        threading.Timer(args.login_delay, server.login).start()
    print(f"ready - started server on 127.0.0.1:{server.port}, url: {server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    server.httpd.server_close()


if __name__ == "__main__":
    main()
