"""The modal-login flow and the per-node preparation hooks the supervisor calls.

Longer than ~150 lines: the interactive flow (URL, browser/ssh hint, countdowns, ORG_ID,
activation) and :class:`PreparedNode` (what runs before every start) share helpers.

Flow (generations.md §2.4, v0.3.0+ script sequence): print the URL (and ``ssh -L
3000:localhost:3000 user@host`` when Linux has no ``DISPLAY``/``WAYLAND_DISPLAY``), open a
browser when there is a display, wait for ``modal-login/temp-data/userData.json`` (countdown,
``login_timeout`` s), take ORG_ID as its first key, poll ``GET
/api/get-api-key-status?orgId=`` until the body is ``activated`` (``activation_timeout`` s),
then back the login files up (:mod:`gswarm.rlswarm.identity`). Errors are LoginError (exit 4)
naming the file or the timeout and saying to log in again; nothing is deleted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import httpx

from gswarm.clock import Clock, SystemClock
from gswarm.errors import LoginError
from gswarm.rlswarm import identity
from gswarm.rlswarm.sidecars import MODAL_PORT, ModalLogin, Sidecar, ensure_ollama

LOGIN_TIMEOUT, ACTIVATION_TIMEOUT, POLL = 600.0, 300.0, 1.0


def detect_generation(checkout: Path) -> str:
    """``E0``…``E6`` or ``unknown`` via :func:`gswarm.rlswarm.generations.detect` (CheckoutError)."""
    from gswarm.rlswarm.generations import detect

    return detect(Path(checkout)).generation


def has_display(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """False on Linux without ``DISPLAY``/``WAYLAND_DISPLAY`` (headless: print the ssh hint instead)."""
    env = os.environ if env is None else env
    if (platform or sys.platform).startswith("linux"):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True


def login_hint(port: int = MODAL_PORT, display: bool = True) -> str:
    """The message telling the operator where to log in."""
    url = f"http://localhost:{port}"
    if display:
        return f"Log in at {url} (a browser window should open)."
    return (f"Log in at {url}. This machine has no display: from your own computer run\n"
            f"  ssh -L {port}:localhost:{port} user@this-host\n"
            f"then open {url} in your browser there.")


class _Countdown:
    """A one-line Rich countdown ``<text> m:ss left`` (manual refresh, no thread)."""

    def __init__(self, console: Any, text: str) -> None:
        from rich.live import Live
        from rich.text import Text

        self._text, self._Text = text, Text
        self._live = Live(Text(text), console=console, auto_refresh=False, transient=True) if console else None

    def __enter__(self) -> "_Countdown":
        if self._live:
            self._live.__enter__()
        return self

    def show(self, left: float, extra: str = "") -> None:
        if self._live:
            m, s = divmod(max(0, int(left)), 60)
            self._live.update(self._Text(f"{self._text} {m}:{s:02d} left{extra} (Ctrl-C to stop)"), refresh=True)

    def __exit__(self, *exc: Any) -> None:
        if self._live:
            self._live.__exit__(*exc)


async def wait_for_user_data(checkout: Path, *, clock: Clock, timeout: float = LOGIN_TIMEOUT, poll: float = POLL,
                             console: Any = None) -> str:
    """Wait until ``userData.json`` exists and holds an ORG_ID; returns it.

    A file that stays malformed for two more polls (the server may be mid-write) raises
    LoginError naming it. Timeout → LoginError "log in again".
    """
    path = identity.temp_data(checkout) / "userData.json"
    deadline, bad = clock.monotonic() + timeout, 0
    with _Countdown(console, "Waiting for modal userData.json…") as cd:
        while True:
            if path.exists():
                try:
                    return identity.read_org_id(path)
                except LoginError:
                    bad += 1
                    if bad > 2:
                        raise
            left = deadline - clock.monotonic()
            if left <= 0:
                raise LoginError(f"nobody logged in within {timeout:g} s ({path} was not created); log in again: "
                                 f"run `gswarm login` and open the page (on a server use ssh -L {MODAL_PORT}:localhost:{MODAL_PORT})")
            cd.show(left)
            await clock.sleep(poll)


async def wait_for_activation(org_id: str, *, port: int = MODAL_PORT, clock: Clock, timeout: float = ACTIVATION_TIMEOUT,
                              poll: float = POLL, console: Any = None) -> None:
    """Poll ``GET /api/get-api-key-status?orgId=`` until the body is ``activated``.

    Errors (500, 502, refused) are shown and polling goes on. Timeout → LoginError naming
    ORG_ID, the last answer and saying to log in again (exit 4).
    """
    url = f"http://127.0.0.1:{port}/api/get-api-key-status"
    deadline, last = clock.monotonic() + timeout, "no answer yet"
    async with httpx.AsyncClient(timeout=5.0) as client:
        with _Countdown(console, f"Waiting for API key of ORG_ID {org_id} to be activated…") as cd:
            while True:
                try:
                    resp = await client.get(url, params={"orgId": org_id})
                    body = resp.text.strip()
                    if resp.status_code == 200 and body == "activated":
                        return
                    last = f"HTTP {resp.status_code} {body[:60]!r}"
                except httpx.HTTPError as exc:
                    last = f"modal-login server not reachable ({type(exc).__name__})"
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise LoginError(f"the API key for ORG_ID {org_id} was not activated within {timeout:g} s (last answer: {last}); "
                                     f"log in again at http://localhost:{port} (reload the page where you signed in; allow "
                                     "third-party cookies; on a server check the ssh -L port forwarding), then retry")
                cd.show(left, f" — last answer: {last}")
                await clock.sleep(poll)


async def ensure_login(checkout: Path, state_dir: Path, *, port: int = MODAL_PORT, clock: Clock | None = None,
                       console: Any = None, login_timeout: float = LOGIN_TIMEOUT, activation_timeout: float = ACTIVATION_TIMEOUT,
                       poll: float = POLL, env: Mapping[str, str] | None = None,
                       open_browser: Callable[[str], Any] = webbrowser.open) -> str:
    """A logged-in, activated ORG_ID for ``checkout`` — restored from backup when possible.

    Needs the modal-login server on ``port``. Returns ORG_ID. Raises LoginError.
    """
    clock = clock or SystemClock()
    restored = identity.keep_login(checkout, state_dir)  # a corrupt userData.json is replaced from the backup
    user_data = identity.temp_data(checkout) / "userData.json"
    if user_data.exists():
        org = identity.read_org_id(user_data)
        if identity.key_activated(user_data.with_name("userApiKey.json"), org):
            await wait_for_activation(org, port=port, clock=clock, timeout=activation_timeout, poll=poll, console=console)
            identity.backup_login_files(checkout, state_dir)
            if console and restored:
                console.print(f"login restored from backup ({'; '.join(restored)}); ORG_ID {org}")
            return org
    display = has_display(env)
    if console:
        console.print(login_hint(port, display))
    if display:
        try:
            open_browser(f"http://localhost:{port}")
        except Exception:  # no browser is not an error: the URL is printed
            pass
    org = await wait_for_user_data(checkout, clock=clock, timeout=login_timeout, poll=poll, console=console)
    if console:
        console.print(f"Your ORG_ID is set to: {org}")
    await wait_for_activation(org, port=port, clock=clock, timeout=activation_timeout, poll=poll, console=console)
    identity.backup_login_files(checkout, state_dir)
    if console:
        console.print("API key is activated; login backed up (0600) so restarts need no new login.")
    return org


@dataclass
class PreparedNode:
    """Everything GSwarm set up for one node, and the hooks the supervisor calls.

    ``python``: the venv interpreter (direct mode; None in script mode). ``org_id``: the
    activated ORG_ID (testnet) or None. ``modal``/``ollama``: sidecars GSwarm owns (None when
    not needed or already run by someone else). ``lock``: the identity lock held while the
    node runs. Call :meth:`before_start` before every (re)start, :meth:`after_start` once the
    trainer runs, :meth:`close` when the node stops for good.
    """

    checkout: Path
    state_dir: Path
    generation: str
    mode: str
    python: Path | None = None
    org_id: str | None = None
    identity_pem: Path | None = None
    modal: ModalLogin | None = None
    ollama: Sidecar | None = None
    lock: identity.IdentityLock | None = None
    ollama_port: int = 11434
    notes: list[str] = field(default_factory=list)

    async def before_start(self) -> list[str]:
        """Restore missing login files and swarm.pem, verify the identity, revive dead sidecars.

        Returns human-readable notes of what was done. Raises IdentityError/LoginError/SetupError.
        """
        done = identity.keep_login(self.checkout, self.state_dir)
        st = identity.guard_identity(self.checkout, self.state_dir, self.identity_pem)
        if st.action in ("restored", "backed_up"):
            done.append(f"swarm.pem {st.action} ({st.backup})")
        return done + await self.revive()

    async def revive(self) -> list[str]:
        """Restart the modal-login server if it died; E6 (direct): make sure ollama answers.

        Called by :meth:`before_start` and periodically by the sidecar service. Returns notes.
        """
        done = []
        if self.modal is not None and not self.modal.sidecar.running():
            await self.modal.start()
            done.append(f"modal-login server restarted (pid {self.modal.sidecar.pid})")
        if self.generation == "E6" and self.mode == "direct":
            if self.ollama is not None and not self.ollama.running():
                await self.ollama.stop(1.0)
                self.ollama = None
            car = await ensure_ollama(self.checkout, port=self.ollama_port, env=self.modal.env if self.modal else None)
            if car is not None:
                self.ollama = car
                done.append(f"ollama serve started (pid {car.pid})")
        return done

    def after_start(self) -> str | None:
        """Once the trainer runs: back up swarm.pem the first time the node created it and the login files
        (a login done in the script's browser flow, §2.4); returns a note or None."""
        notes = identity.keep_login(self.checkout, self.state_dir)
        st = identity.guard_identity(self.checkout, self.state_dir, self.identity_pem)
        if st.action == "backed_up":
            notes.append(f"swarm.pem backed up to {st.backup}")
        return "; ".join(notes) or None

    def settings_update(self) -> dict[str, Any]:
        """Fields to apply to Settings before ``build_launch_spec`` (``python``, ``org_id``)."""
        out: dict[str, Any] = {}
        if self.python is not None:
            out["python"] = self.python
        if self.org_id:
            out["org_id"] = self.org_id
        return out

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the sidecars GSwarm started, restore ``modal-login/.env``, release the identity lock."""
        if self.ollama is not None:
            await self.ollama.stop(timeout)
        if self.modal is not None:
            await self.modal.stop(timeout)
        if self.lock is not None:
            self.lock.release()


async def prepare_node(settings: Any, checkout: Path | None = None, *, state_dir: Path, clock: Clock | None = None,
                       console: Any = None, install: bool = True, modal_port: int = MODAL_PORT, ollama_port: int = 11434,
                       env: Mapping[str, str] | None = None, login_timeout: float = LOGIN_TIMEOUT,
                       activation_timeout: float = ACTIVATION_TIMEOUT, poll: float = POLL, lock_dir: Path | None = None,
                       open_browser: Callable[[str], Any] = webbrowser.open, login: bool = True) -> PreparedNode:
    """Take a checkout from bare to ready-to-start (direct mode) or prepare script mode.

    ``login=False``: no modal-login server and no login for this checkout — another checkout of the same
    account on this host already runs them (one login server per account, issue #15; the node reaches it
    on the hard-coded port and gets ORG_ID from the caller).

    Direct mode: venv + requirements (:func:`gswarm.rlswarm.setup.ensure_environment`), the
    modal-login sidecar and login (testnet generations), identity guard + lock, ollama (E6).
    Script mode: only identity guard + lock and the login files kept (restored, repaired, backed up:
    :meth:`PreparedNode.before_start`; the script runs its own yarn and installs). Raises SetupError (5), LoginError/IdentityError (4), CheckoutError (2).
    """
    from gswarm.rlswarm.generations import TESTNET_GENERATIONS
    from gswarm.rlswarm.setup import ensure_environment

    from gswarm.rlswarm.launch import detect_configured

    checkout = Path(checkout if checkout is not None else settings.rl_swarm_dir).resolve()
    gen = detect_configured(settings, checkout).generation  # the error names a profile/file that set the folder
    mode = "script" if settings.via_script or gen == "unknown" else "direct"
    node = PreparedNode(checkout, Path(state_dir), gen, mode, identity_pem=settings.identity_path, ollama_port=ollama_port)
    pem = Path(settings.identity_path) if settings.identity_path else checkout / "swarm.pem"
    identity.guard_identity(checkout, state_dir, pem)
    node.lock = identity.IdentityLock(pem, settings.node_name, lock_dir)
    node.lock.acquire()
    try:
        if mode == "direct" and install:
            res = await asyncio.to_thread(ensure_environment, checkout, gen, requirements=settings.requirements,
                                          python=settings.python, console=console, cpu_only=settings.cpu_only)
            node.python = res.python
        testnet = gen in TESTNET_GENERATIONS and (settings.testnet or gen not in ("E1", "E2"))  # E1/E2 --no-testnet
        if mode == "direct" and testnet and login:
            node.modal = ModalLogin(checkout, state_dir, gen, port=modal_port, swarm=settings.swarm,
                                    contract=settings.contract_address, env=env, clock=clock)
            await node.modal.start()
            node.org_id = await ensure_login(checkout, state_dir, port=modal_port, clock=clock, console=console,
                                             login_timeout=login_timeout, activation_timeout=activation_timeout,
                                             poll=poll, env=env, open_browser=open_browser)
        node.notes += await node.before_start()
    except BaseException:
        await node.close()
        raise
    return node
