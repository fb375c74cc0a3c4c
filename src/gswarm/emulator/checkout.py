"""Write an emulated RL Swarm checkout of a given generation (``gswarm emulate init``).

Layout: the distinguishing paths of that generation (``_layout``), a faithful
``run_rl_swarm.sh`` (:mod:`gswarm.emulator.script`), thin entry points at the
real paths that run ``.gswarm-emulator/emu_node.py`` (a copy of
:mod:`gswarm.emulator.node`, stdlib only), ``failure_texts.json`` for fault
injection, and ``state.json`` (run counter and round) written by the node.

Environment read by the node and script: ``GSWARM_EMU_PACE``, ``GSWARM_EMU_FAULTS``,
``GSWARM_EMU_ROUNDS``, ``GSWARM_EMU_START_ROUND``, ``GSWARM_EMU_MODAL_URL``,
``GSWARM_EMU_POLL``, ``GSWARM_EMU_SERVER_DELAY``, ``GSWARM_EMU_PYTHON`` (see
:mod:`gswarm.emulator.node` and :mod:`gswarm.emulator.script`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from gswarm.emulator import _layout
from gswarm.emulator.script import script_for
from gswarm.errors import CheckoutError, ConfigError
from gswarm.paths import atomic_write
from gswarm.rlswarm import _eras
from gswarm.rlswarm.generations import GENERATIONS, TESTNET_GENERATIONS

EMU_DIR = ".gswarm-emulator"
_PKG = Path(__file__).resolve().parent
FAILURE_TEXTS = _PKG / "failure_texts.json"  # category -> the text a crash of that category prints


def _prepare(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise CheckoutError(f"{target} exists and is not a folder; choose another DIR")
    if target.is_dir() and any(target.iterdir()):
        if not (target / EMU_DIR).is_dir():
            raise CheckoutError(f"{target} is not empty and not an emulated checkout; GSwarm will not write into it "
                                "(even with --force); choose an empty or new DIR")
        if not force:
            raise CheckoutError(f"{target} already holds an emulated checkout; pass --force to replace it")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Plain write for the fake tree (a fresh folder nobody reads yet; fsync per file would be slow)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def _write_layout(target: Path, gen: str) -> None:
    contract = _eras.swarm_contract(gen) or ""
    for rel in _layout.FILES[gen]:
        text = _layout.STUB if rel.endswith((".py", ".yaml", ".txt", ".md", ".ts")) else ""
        if rel == "modal-login/.env":
            text = _layout.env_file(gen, contract)
        elif rel == "docker-compose.yaml":
            text = _layout.compose_file(gen)
        elif rel.endswith(".json"):
            text = "{}\n"
        _write(target / rel, text)
    entry, ups = _layout.ENTRY_FILES[gen]
    _write(target / entry, _layout.ENTRY_TEMPLATE.format(gen=gen, ups=ups))
    for parent in Path(entry).parents:  # __init__.py so `python -m` works from cwd = checkout
        if str(parent) not in (".", "genrl-swarm", "genrl-swarm/src") and not (target / parent / "__init__.py").exists():
            _write(target / parent / "__init__.py", "")
    _write(target / "run_rl_swarm.sh", script_for(gen), mode=0o755)
    if gen == "E3":  # the script's config sync would create it on first run (§6.3)
        _write(target / "configs" / "rg-swarm.yaml", _layout.STUB)
        _write(target / "genrl-swarm" / "pyproject.toml", _layout.GENRL_PYPROJECT)
        _write(target / "genrl-swarm" / "_emu_build" / "emu_backend.py", _layout.GENRL_BACKEND)


def _write_emulator(target: Path, gen: str) -> None:
    emu = target / EMU_DIR
    _write(emu / "emu_node.py", (_PKG / "node.py").read_text(encoding="utf-8"))
    _write(emu / "failure_texts.json", FAILURE_TEXTS.read_text(encoding="utf-8") if FAILURE_TEXTS.exists() else "{}\n")
    _write(emu / "generation", gen + "\n")
    _write(emu / "bin" / "python", '#!/bin/sh\nexec "${GSWARM_EMU_PYTHON:-python3}" "$@"\n', mode=0o755)
    _write(emu / "README", "Written by `gswarm emulate init`: an emulated RL Swarm checkout (no real training).\n")


def write_login(target: Path, org_id: str | None = None) -> str:
    """Create ``modal-login/temp-data/userData.json`` and ``userApiKey.json`` (0600) like a finished login.

    Shapes per generations.md §2.4 (object keyed by orgId; key list with
    ``activated``). Returns the ORG_ID (a UUID string unless ``org_id`` is given).
    """
    org = org_id or str(uuid.uuid4())
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    user = {org: {"orgId": org, "address": "0x" + uuid.uuid4().hex[:20] + "0" * 20, "userId": str(uuid.uuid4()),
                  "email": "emulated@example.invalid"}}
    key = {org: [{"publicKey": "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8], "privateKey": "0x" + "00" * 32,
                  "createdAt": now, "activated": True, "deferredActionDigest": "0x" + "11" * 32,
                  "accountAddress": "0x" + "22" * 20, "initCode": "0x"}]}
    temp = Path(target) / "modal-login" / "temp-data"
    atomic_write(temp / "userData.json", json.dumps(user, indent=2) + "\n", mode=0o600)
    atomic_write(temp / "userApiKey.json", json.dumps(key, indent=2) + "\n", mode=0o600)
    return org


def init_checkout(directory: Path, generation: str, logged_in: bool = False, force: bool = False) -> Path:
    """Write an emulated checkout of ``generation`` (``E0``…``E6``) into ``directory``; returns its absolute path.

    ``logged_in`` pre-creates the login files (testnet generations E1–E6 only;
    ignored for E0, which has no login). ``force`` replaces an existing
    *emulated* checkout; a non-empty folder that is not one is never touched.
    Raises ConfigError for an unknown generation, CheckoutError for an unusable folder.
    """
    if generation not in GENERATIONS:
        raise ConfigError(f"option generation: {generation!r} is not one of {', '.join(GENERATIONS)}")
    target = Path(directory).expanduser().resolve()
    _prepare(target, force)
    _write_layout(target, generation)
    _write_emulator(target, generation)
    if generation in TESTNET_GENERATIONS:  # yarn/node stand-ins: `gswarm setup` and `gswarm login` work offline
        from gswarm.emulator.modal_server import write_fake_node, write_fake_yarn

        write_fake_yarn(target / EMU_DIR / "tools")
        write_fake_node(target / EMU_DIR / "tools")
    if logged_in and generation in TESTNET_GENERATIONS:
        write_login(target)
    os.chmod(target / "run_rl_swarm.sh", 0o755)
    return target
