"""``gswarm doctor``: one check per prerequisite of a node, each pass / warn / fail with a fix.

Longer than ~150 lines: one small function per check keeps each readable; they share no state.

Thresholds (documented choices, GiB = 2**30 bytes):

* Memory per model size in billions of parameters (E0–E2 ``model_size``; E3–E6 parsed from
  ``model_name`` like ``…-1.5B-…``, default 0.5): ``NEED`` maps size → (RAM, VRAM) —
  0.5 → (16, 8), 1.5 → (24, 16), 7 → (32, 24), 32 → (64, 40, 4-bit config), 72 → (128, 80, 4-bit).
  RL Swarm's README asks for ≥ 32 GB RAM on CPU and ≥ 24 GB VRAM on GPU from E3 on; the small
  sizes can train below that, so below ``NEED`` is **warn**, below half of it is **fail**.
  VRAM is judged on NVIDIA only (NVML); Apple MPS shares RAM.
* Disk free at the checkout: < 5 GiB fail, < 20 GiB warn (torch + model weights + venv).
* Ports: 3000 (modal-login, testnet generations) and 38331 (libp2p of E0–E2 GPU configs,
  generations.md §4/§5) — held by another process → warn naming pid and command.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from gswarm.errors import GSwarmError

Status = Literal["pass", "warn", "fail"]
GiB = 2**30
NEED = {0.5: (16, 8), 1.5: (24, 16), 7: (32, 24), 32: (64, 40), 72: (128, 80)}
P2P_PORT = 38331


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: ``status`` pass|warn|fail, ``detail`` what was found, ``fix`` what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        """``{"name", "status", "detail", "fix"}``."""
        return asdict(self)


def model_billions(settings: Any, generation: str) -> float:
    """Parameter count (billions) the node will load: ``model_size`` (E0–E2) or parsed from ``model_name``."""
    if generation in ("E0", "E1", "E2"):
        return float(settings.model_size) if generation == "E2" else 0.5
    m = re.search(r"(\d+(?:\.\d+)?)[bB]\b", settings.model_name or "")
    return float(m.group(1)) if m else 0.5


def _need(billions: float) -> tuple[float, float]:
    size = min(NEED, key=lambda s: abs(s - billions))
    return NEED[size]


def check_generation(checkout: Path) -> tuple[Check, str | None]:
    """Detected generation (fail when not a checkout); returns the check and the generation or None."""
    from gswarm.rlswarm.generations import detect

    try:
        det = detect(checkout)
    except GSwarmError as exc:
        return Check("generation", "fail", str(exc), "pass --rl-swarm-dir with your rl-swarm checkout"), None
    if det.generation == "unknown":
        return Check("generation", "warn", f"{checkout}: unknown layout", "GSwarm will use script mode (--via-script)"), "unknown"
    return Check("generation", "pass", f"{det.generation} ({', '.join(det.evidence[:3])})"), det.generation


def check_python(settings: Any, checkout: Path, generation: str | None) -> list[Check]:
    """Node interpreter in 3.10-3.12 and the venv's install stamp up to date."""
    from gswarm.rlswarm import setup as st

    venv = Path(settings.python).parent.parent if settings.python else checkout / ".venv"
    py = Path(settings.python) if settings.python else venv / "bin" / "python"
    if not py.exists():
        try:
            base = st.find_base_python()
            detail = f"no venv at {venv}; base interpreter {base} is supported"
            return [Check("python", "pass", detail), Check("venv", "warn", f"{venv} does not exist", "run `gswarm setup`")]
        except GSwarmError as exc:
            return [Check("python", "fail", str(exc), "install Python 3.11"), Check("venv", "warn", f"{venv} missing", "run `gswarm setup`")]
    try:
        ver = st.python_version(py)
    except GSwarmError as exc:
        return [Check("python", "fail", str(exc), "recreate the venv: remove it and run `gswarm setup`")]
    vtext = ".".join(map(str, ver))
    out = [Check("python", "pass", f"{py} is {vtext}") if st.supported(ver) else
           Check("python", "fail", f"{py} is {vtext}; supported 3.10-3.12", "install Python 3.11, remove the venv, run `gswarm setup`")]
    stamp = st.stamp_status(checkout, venv)
    if stamp is None:
        out.append(Check("venv", "warn", f"{venv}: requirements not installed by GSwarm (no stamp)", "run `gswarm setup`"))
    elif generation and generation != "unknown":
        try:
            steps = st.install_plan(checkout, generation, stamp.get("hardware", "cpu"), settings.requirements)
            fresh = st.stamp_digest(py, ver, steps) == stamp.get("digest")
        except GSwarmError as exc:
            return out + [Check("venv", "fail", str(exc), "fix the checkout, then `gswarm setup`")]
        out.append(Check("venv", "pass", f"{venv}: requirements installed ({stamp.get('hardware')})") if fresh else
                   Check("venv", "warn", f"{venv}: requirements changed since the last install", "run `gswarm setup`"))
    return out


def check_node_tools(env: dict[str, str]) -> list[Check]:
    """``node`` and ``yarn`` on PATH (modal-login), with versions or install advice."""
    from gswarm.rlswarm.sidecars import NODE_HINT, YARN_HINT

    out = []
    for tool, hint in (("node", NODE_HINT), ("yarn", YARN_HINT)):
        exe = shutil.which(tool, path=env.get("PATH"))
        if not exe:
            out.append(Check(tool, "fail", f"{tool} not found on PATH", hint))
            continue
        try:
            ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20, env=env).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            ver = "?"
        out.append(Check(tool, "pass", f"{exe} {ver}".strip()))
    return out


def gpu_info() -> dict[str, Any]:
    """``{"kind": "nvidia"|"mps"|"none", "driver", "gpus": [{"name", "total", "free"}]}`` (bytes)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                name = pynvml.nvmlDeviceGetName(h)
                gpus.append({"name": name.decode() if isinstance(name, bytes) else name, "total": mem.total, "free": mem.free})
            driver = pynvml.nvmlSystemGetDriverVersion()
            return {"kind": "nvidia" if gpus else "none", "driver": driver.decode() if isinstance(driver, bytes) else driver, "gpus": gpus}
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        import platform

        if platform.system() == "Darwin" and platform.machine() == "arm64":
            return {"kind": "mps", "driver": None, "gpus": []}
        return {"kind": "none", "driver": None, "gpus": []}


def check_memory(billions: float, gpu: dict[str, Any]) -> list[Check]:
    """Free RAM (and NVIDIA VRAM) against ``NEED`` for a ``billions``-parameter model."""
    ram_need, vram_need = _need(billions)
    vm = psutil.virtual_memory()
    avail, total = vm.available / GiB, vm.total / GiB
    status: Status = "pass" if avail >= ram_need else ("warn" if total >= ram_need / 2 else "fail")
    out = [Check("ram", status, f"{avail:.1f} GiB free of {total:.1f} GiB; a {billions:g}B model wants {ram_need} GiB",
                 "" if status == "pass" else "close other programs, add swap/RAM, or choose a smaller model")]
    if gpu["kind"] == "nvidia":
        best = max(gpu["gpus"], key=lambda g: g["free"])
        free, tot = best["free"] / GiB, best["total"] / GiB
        st: Status = "pass" if free >= vram_need else ("warn" if tot >= vram_need / 2 else "fail")
        out.append(Check("vram", st, f"{best['name']}: {free:.1f} GiB free of {tot:.1f} GiB; a {billions:g}B model wants {vram_need} GiB",
                         "" if st == "pass" else "stop other GPU processes or choose a smaller model (--model-size / --model-name)"))
    return out


def check_gpu(gpu: dict[str, Any]) -> Check:
    """NVIDIA driver and GPUs, Apple MPS, or CPU only (never a failure)."""
    if gpu["kind"] == "nvidia":
        names = ", ".join(g["name"] for g in gpu["gpus"])
        return Check("gpu", "pass", f"NVIDIA driver {gpu['driver']}: {names}")
    if gpu["kind"] == "mps":
        return Check("gpu", "pass", "Apple MPS (set PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 if memory runs out)")
    return Check("gpu", "pass", "no GPU found (NVML unavailable): the CPU configuration is used")


def check_disk(checkout: Path) -> Check:
    """Free disk at the checkout: < 5 GiB fail, < 20 GiB warn."""
    where = checkout if checkout.exists() else Path.cwd()
    free = shutil.disk_usage(where).free / GiB
    status: Status = "pass" if free >= 20 else ("warn" if free >= 5 else "fail")
    return Check("disk", status, f"{free:.1f} GiB free at {where}", "" if status == "pass" else "free disk space (models, venv and logs need ≥ 20 GiB)")


def check_port(name: str, port: int) -> Check:
    """``port`` free, or warn naming the holder's pid and command (never stopped)."""
    from gswarm.rlswarm.sidecars import port_holders, port_in_use

    holders = port_holders(port)
    if not holders and not port_in_use(port):
        return Check(name, "pass", f"port {port} is free")
    who = ", ".join(h.describe() for h in holders) or "an unknown process"
    return Check(name, "warn", f"port {port} is held by {who}",
                 "if that is not this node's own server, stop it (GSwarm never stops processes it did not start)")


def check_identity(settings: Any, checkout: Path, state_dir: Path, generation: str | None) -> Check:
    """swarm.pem present with mode 600, and its backup."""
    from gswarm.rlswarm.identity import checkout_key

    pem = Path(settings.identity_path) if settings.identity_path else checkout / "swarm.pem"
    backup = Path(state_dir) / "backups" / checkout_key(checkout) / "swarm.pem"  # looked at, not created
    if pem.is_file():
        mode = stat.S_IMODE(pem.stat().st_mode)
        if mode & 0o077:
            return Check("identity", "warn", f"{pem} has mode {mode:o} (others can read the private key)", f"chmod 600 {pem}")
        extra = "backed up" if backup.is_file() else "not backed up yet (GSwarm backs it up at the next start)"
        return Check("identity", "pass", f"{pem} present, mode 600, {extra}")
    if backup.is_file():
        return Check("identity", "warn", f"{pem} missing; backup {backup} exists", "GSwarm restores it at the next start")
    if generation == "E0":
        return Check("identity", "pass", "E0 uses a random identity unless IDENTITY_PATH is set")
    return Check("identity", "warn", f"{pem} missing and no backup", "the node generates a new identity at its first start")


def check_login(checkout: Path, state_dir: Path) -> Check:
    """Login files valid and activated, or restorable from the backup."""
    from gswarm.rlswarm import identity as idm

    path = idm.temp_data(checkout) / "userData.json"
    backed = idm.backed_up_org_id(checkout, state_dir)
    if path.exists():
        try:
            org = idm.read_org_id(path)
        except GSwarmError as exc:
            return Check("login", "fail", str(exc), "run `gswarm login`")
        if idm.key_activated(path.with_name("userApiKey.json"), org):
            return Check("login", "pass", f"ORG_ID {org}, key activated, {'backed up' if backed else 'no backup yet'}")
        return Check("login", "warn", f"ORG_ID {org}: API key not activated", "run `gswarm login` and finish the login in the browser")
    if backed:
        return Check("login", "pass", f"login files missing; backup of ORG_ID {backed} is restored at the next start")
    return Check("login", "warn", "not logged in (no userData.json, no backup)", "run `gswarm login`")


def check_ollama(env: dict[str, str], port: int) -> Check:
    """E6: ollama answers on ``port`` or is installed (GSwarm starts it); fail with advice otherwise."""
    import httpx

    from gswarm.rlswarm.sidecars import OLLAMA_HINT

    try:
        if httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=2.0).status_code == 200:
            return Check("ollama", "pass", f"ollama answers on port {port}")
    except httpx.HTTPError:
        pass
    exe = shutil.which("ollama", path=env.get("PATH"))
    if exe:
        return Check("ollama", "pass", f"{exe} installed, not running: GSwarm starts `ollama serve` with the node")
    return Check("ollama", "fail", "ollama not installed and nothing answers on port " + str(port), OLLAMA_HINT)


def run_checks(settings: Any, *, checkout: Path | None = None, state_dir: Path | None = None, env: dict[str, str] | None = None,
               modal_port: int = 3000, p2p_port: int = P2P_PORT, ollama_port: int = 11434) -> list[Check]:
    """All checks for ``settings``' checkout (see module docstring for thresholds). Never raises for a failed check."""
    from gswarm.paths import state_dir as resolve_state_dir

    checkout = Path(checkout or settings.rl_swarm_dir).resolve()
    state = Path(state_dir) if state_dir else resolve_state_dir(settings.state_dir, writable=False)  # looks only
    env = dict(env if env is not None else os.environ)
    gen_check, gen = check_generation(checkout)
    checks = [gen_check, *check_python(settings, checkout, gen)]
    testnet = gen in ("E3", "E4", "E5", "E6") or (gen in ("E1", "E2") and settings.testnet)
    if testnet and not settings.via_script:
        checks += check_node_tools(env)
    gpu = gpu_info()
    checks += [check_gpu(gpu), *check_memory(model_billions(settings, gen or "E4"), gpu), check_disk(checkout)]
    if testnet:
        checks.append(check_port("port modal-login", modal_port))
    if gen in ("E0", "E1", "E2") and gpu["kind"] == "nvidia" and not settings.cpu_only:
        checks.append(check_port("port p2p", p2p_port))
    checks.append(check_identity(settings, checkout, state, gen))
    if testnet:
        checks.append(check_login(checkout, state))
    if gen == "E6":
        checks.append(check_ollama(env, ollama_port))
    return checks
