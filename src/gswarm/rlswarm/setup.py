"""The node's Python environment: interpreter check, venv, requirements per generation.

Longer than ~150 lines because the install plan, the pip runner with its progress
display and the failure classifier belong together (one concept: "install").

Decisions (documented for operators):

* **Venv location**: ``<checkout>/.venv`` (the RL Swarm README's own advice), so that
  ``run_rl_swarm.sh`` in script mode, an operator's ``source .venv/bin/activate`` and
  GSwarm's direct mode all use the same environment. ``settings.python`` pointing at an
  existing interpreter means "use that venv" (nothing is created).
* **Python range**: 3.10 ≤ version < 3.13 for every generation. The README asks for
  ≥ 3.10; the E3–E6 Docker image pins 3.11.9 (generations.md §11); torch/vllm 0.7.3
  (E2) and the hivemind fork had no wheels for 3.13 in those eras. 3.11 is preferred.
* **Requirements** (generations.md §3–§9 "Installs"): E0/E1 ``requirements-hivemind.txt``
  + ``requirements.txt`` (+ ``requirements_gpu.txt`` on NVIDIA); E2
  ``requirements-cpu.txt`` or ``requirements-gpu.txt`` + ``flash-attn
  --no-build-isolation`` (GPU); E3 ``-e genrl-swarm[examples]``; E4/E5 the ``pip
  install`` lines of ``run_rl_swarm.sh`` (gensyn-genrl pin from ``GENRL_TAG``, the
  unquoted ``reasoning-gym>=0.1.20`` taken as the version bound it was meant to be);
  E6 ``code_gen_exp/requirements.txt``. ``settings.requirements`` replaces the plan.
  ``pip install --upgrade pip`` is not run (it needs the network on every start).
* **Stamp**: ``<venv>/gswarm-setup.json`` holds a SHA-256 of the interpreter path and
  version, the plan's arguments and every file it names; it is written only after every
  step succeeded, so a half-installed venv is never mistaken for done.
* **Log**: the full pip output goes to ``<checkout>/logs/gswarm-setup.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from gswarm.errors import SetupError

PY_MIN, PY_MAX = (3, 10), (3, 12)
STAMP = "gswarm-setup.json"
Hardware = str  # "cpu" | "gpu" | "mps"

E4_DEFAULTS = ("gensyn-genrl==0.1.4", "reasoning-gym>=0.1.20", "trl",
               "hivemind@git+https://github.com/gensyn-ai/hivemind@639c964a8019de63135a2594663b5bec8e5356dd")
E5_DEFAULTS = ("gensyn-genrl==0.1.11", "reasoning-gym>=0.1.20",
               "hivemind@git+https://github.com/gensyn-ai/hivemind@639c964a8019de63135a2594663b5bec8e5356dd")


@dataclass(frozen=True)
class InstallStep:
    """One ``pip install`` call: ``args`` follow ``install``; ``files`` are hashed into the stamp."""

    label: str
    args: tuple[str, ...]
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class EnvResult:
    """Outcome of :func:`ensure_environment`: the venv interpreter and whether pip ran."""

    python: Path
    venv: Path
    installed: bool
    log_path: Path
    steps: tuple[InstallStep, ...] = field(default_factory=tuple)


def detect_hardware(cpu_only: bool = False) -> Hardware:
    """``"gpu"`` when NVIDIA is present (NVML or ``nvidia-smi``, as the script tests),
    ``"mps"`` on Apple silicon, else ``"cpu"``; ``cpu_only`` forces ``"cpu"``."""
    if cpu_only:
        return "cpu"
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() > 0:
                return "gpu"
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        if shutil.which("nvidia-smi"):
            return "gpu"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def _req(checkout: Path, rel: str) -> InstallStep:
    path = checkout / rel
    if not path.is_file():
        raise SetupError(f"{path} is missing: the checkout looks incomplete; run `git status` / `git checkout -- {rel}` in {checkout}")
    return InstallStep(rel, ("-r", str(path)), (path,))


def script_pip_specs(script: Path) -> list[str]:
    """Package specs of the ``pip install`` lines of ``run_rl_swarm.sh`` (E4/E5).

    ``$VAR``/``${VAR}`` are replaced from ``VAR=value`` assignments in the script; options
    and ``--upgrade pip`` are dropped. Returns [] when nothing is found.
    """
    text = script.read_text(encoding="utf-8", errors="replace") if script.is_file() else ""
    assigns = dict(re.findall(r'^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=["\']?([^"\'\s]*)', text, re.M))
    specs: list[str] = []
    for line in text.splitlines():
        m = re.search(r"\bpip3?\s+install\s+(.*)$", line.split("#", 1)[0])
        if not m or "--upgrade pip" in line or " -r " in f" {m.group(1)}":
            continue
        for tok in m.group(1).split():
            tok = re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda v: assigns.get(v.group(1), ""), tok.strip("\"'"))
            if tok.startswith(("-", ">", "<", "&", "|", ";")) or not tok or tok == "pip":
                continue
            specs.append(tok)
    return specs


def install_plan(checkout: Path, generation: str, hardware: Hardware, requirements: Path | None = None) -> list[InstallStep]:
    """The pip steps for ``generation`` on ``hardware`` (see the module docstring). An emulated E4/E5 checkout
    (``gswarm emulate init``) gets none: its node is stdlib-only and its script's specs need the network.

    Raises SetupError when a file the plan needs is missing, naming it.
    """
    checkout = Path(checkout)
    if requirements is not None:
        req = Path(requirements)
        if not req.is_file():
            raise SetupError(f"requirements file {req} (option requirements) does not exist; fix the path")
        return [InstallStep(req.name, ("-r", str(req)), (req,))]
    if generation in ("E0", "E1"):
        steps = [_req(checkout, "requirements-hivemind.txt"), _req(checkout, "requirements.txt")]
        return steps + ([_req(checkout, "requirements_gpu.txt")] if hardware == "gpu" else [])
    if generation == "E2":
        if hardware == "gpu":
            return [_req(checkout, "requirements-gpu.txt"), InstallStep("flash-attn", ("--no-build-isolation", "flash-attn"))]
        return [_req(checkout, "requirements-cpu.txt")]
    if generation == "E3":
        pkg = checkout / "genrl-swarm"
        if not pkg.is_dir():
            raise SetupError(f"{pkg} is missing (E3 installs genrl-swarm from a clone): run `git clone --branch v0.1.1 "
                             f"https://github.com/gensyn-ai/genrl-swarm.git {pkg}` then `gswarm setup` again")
        files = tuple(p for p in (pkg / "pyproject.toml", pkg / "setup.py") if p.is_file())
        return [InstallStep("genrl-swarm", ("-e", f"{pkg}[examples]"), files)]
    if generation in ("E4", "E5"):
        if (checkout / ".gswarm-emulator").is_dir():  # gswarm emulate init: the emulated node is stdlib-only
            return []  # (the real genrl/hivemind specs its script names would need the network)
        script = checkout / "run_rl_swarm.sh"
        specs = script_pip_specs(script) or list(E4_DEFAULTS if generation == "E4" else E5_DEFAULTS)
        return [InstallStep("genrl", tuple(specs), (script,) if script.is_file() else ())]
    if generation == "E6":
        return [_req(checkout, "code_gen_exp/requirements.txt")]
    raise SetupError(f"no install plan for generation {generation!r} in {checkout}: pass --requirements FILE")


def python_version(python: Path) -> tuple[int, int, int]:
    """``(major, minor, micro)`` of interpreter ``python``; SetupError when it cannot run."""
    try:
        out = subprocess.run([str(python), "-c", "import sys;print(*sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        a, b, c = (int(x) for x in out.split())
        return a, b, c
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SetupError(f"cannot run the Python interpreter {python} ({exc}); install Python 3.11 or pass --python") from None


def supported(version: Sequence[int]) -> bool:
    """True when ``version`` is within the supported range (3.10 … 3.12)."""
    return PY_MIN <= tuple(version[:2]) <= PY_MAX


def find_base_python(candidates: Sequence[str | Path] | None = None) -> Path:
    """First interpreter in a supported version: ``sys.executable``, then python3.11/3.12/3.10/python3.

    Raises SetupError listing what was tried and how to install Python 3.11.
    """
    tried = []
    for cand in candidates or (sys.executable, "python3.11", "python3.12", "python3.10", "python3"):
        path = shutil.which(str(cand)) if not os.path.isabs(str(cand)) else str(cand)
        if not path:
            continue
        ver = python_version(Path(path))
        tried.append(f"{path} ({'.'.join(map(str, ver))})")
        if supported(ver):
            return Path(path)
    raise SetupError("no supported Python (3.10-3.12) found; tried: " + (", ".join(tried) or "none") +
                     ". Install Python 3.11 (e.g. `sudo apt install python3.11-venv`, `brew install python@3.11`) or pass --python")


def stamp_digest(python: Path, version: Sequence[int], steps: Sequence[InstallStep]) -> str:
    """SHA-256 hex of the interpreter path/version, the step arguments and the files they name."""
    h = hashlib.sha256(f"{python}|{'.'.join(map(str, version))}".encode())
    for step in steps:
        h.update(("\0".join(step.args)).encode())
        for f in step.files:
            h.update(f.read_bytes() if f.is_file() else b"<missing>")
    return h.hexdigest()


def create_venv(base_python: Path, venv: Path) -> Path:
    """``base_python -m venv venv`` (with pip); returns the venv's interpreter. SetupError on failure."""
    proc = subprocess.run([str(base_python), "-m", "venv", str(venv)], capture_output=True, text=True)
    py = venv / "bin" / "python"
    if proc.returncode != 0 or not py.exists():
        hint = " (on Debian/Ubuntu: `sudo apt install python3-venv`)" if "ensurepip" in proc.stdout + proc.stderr else ""
        raise SetupError(f"creating the venv {venv} with {base_python} failed: {(proc.stderr or proc.stdout).strip()[-400:]}{hint}")
    return py


_CAUSES = (
    ("no network", ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                    "Network is unreachable", "ConnectTimeoutError", "ProxyError", "Could not fetch URL", "Max retries exceeded",
                    "Could not resolve host", "unable to access 'http", "Connection timed out", "Connection refused"),
     "check the network / proxy (pip, or the `git clone` of a git+https requirement, could not reach its server) "
     "and run `gswarm setup` again"),
    ("no space left", ("No space left on device",), "free disk space and run `gswarm setup` again"),
    ("version conflict", ("ResolutionImpossible", "conflicting dependencies", "dependency conflict"),
     "the requirements pin incompatible versions; pass --requirements FILE with compatible pins or update the checkout"),
    ("build failure", ("Failed building wheel", "Failed to build", "subprocess-exited-with-error", "metadata-generation-failed",
                       "error: command"),
     "a package had to be compiled and failed; install the build tools it names (compiler, CUDA toolkit) or use a wheel"),
    ("package not found", ("No matching distribution found", "Could not find a version that satisfies"),
     "a requirement has no version for this Python/platform; check the Python version (3.10-3.12) and the pins"),
)


def classify_pip_failure(output: str) -> tuple[str, str]:
    """``(cause, advice)`` for pip's output: no network, no space left, version conflict,
    build failure, package not found, or ``("unknown", …)``. First matching cause wins."""
    for cause, needles, advice in _CAUSES:
        if any(n in output for n in needles):
            return cause, advice
    return "unknown", "read the log file and fix the first ERROR line"


def run_pip(python: Path, step: InstallStep, log_path: Path, on_line: Callable[[str], None] | None = None) -> None:
    """Run ``python -m pip install <step.args>``, appending all output to ``log_path``.

    ``on_line(text)`` sees each output line (progress display). Raises SetupError with the
    classified cause, the last pip error line and the log path when pip fails.
    """
    argv = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *step.args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_PROGRESS_BAR": "off"}
    tail: list[str] = []
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line.rstrip()])[-200:]
            if on_line:
                on_line(line.rstrip())
        code = proc.wait()
        log.write(f"[exit {code}]\n")
    if code != 0:
        text = "\n".join(tail)
        cause, advice = classify_pip_failure(text)
        errors = [t for t in tail if t.startswith("ERROR")] or tail[-1:]
        raise SetupError(f"installing {step.label} failed ({cause}): {errors[0] if errors else 'pip exited ' + str(code)}; "
                         f"{advice}. Full pip output: {log_path}")


def _progress_runner(python: Path, steps: Sequence[InstallStep], log_path: Path, console) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=False) as progress:
        task = progress.add_task("pip install", total=len(steps))
        for step in steps:
            progress.update(task, description=f"installing {step.label}")

            def show(line: str, step: InstallStep = step) -> None:
                if line.startswith(("Collecting", "Installing", "Building", "Successfully", "Processing", "Obtaining")):
                    progress.update(task, description=f"{step.label}: {line[:70]}")

            run_pip(python, step, log_path, show)
            progress.advance(task)


def ensure_environment(checkout: Path, generation: str, *, hardware: Hardware | None = None,
                       requirements: Path | None = None, python: Path | None = None, venv: Path | None = None,
                       base_python: Path | None = None, reinstall: bool = False, console=None,
                       cpu_only: bool = False) -> EnvResult:
    """Create ``<checkout>/.venv`` (or use ``python``'s venv) and install the generation's plan.

    Skips pip when the stamp matches (same interpreter, plan and file contents) unless
    ``reinstall``. ``console`` (rich Console) shows progress; None = silent. Raises
    SetupError (exit 5): unsupported Python, missing files, venv or pip failure (cause + log).
    """
    checkout = Path(checkout).resolve()
    hw = hardware or detect_hardware(cpu_only)
    steps = install_plan(checkout, generation, hw, requirements)
    log_path = checkout / "logs" / "gswarm-setup.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if python is not None:
        py = Path(python)
        venv_dir = py.parent.parent
        if not (venv_dir / "pyvenv.cfg").is_file():
            raise SetupError(f"option python: {py} is not the interpreter of a venv (no {venv_dir / 'pyvenv.cfg'}); GSwarm "
                             "installs only into venvs: pass a venv's bin/python, or omit --python to create <checkout>/.venv")
    else:
        venv_dir = Path(venv) if venv else checkout / ".venv"
        py = venv_dir / "bin" / "python"
        if not py.exists():
            base = Path(base_python) if base_python else find_base_python()
            _check_version(base, generation)
            if console:
                console.print(f"creating venv {venv_dir} with {base}")
            py = create_venv(base, venv_dir)
    version = _check_version(py, generation)
    digest = stamp_digest(py, version, steps)
    stamp = venv_dir / STAMP
    if not reinstall and _stamp_ok(stamp, digest):
        return EnvResult(py, venv_dir, False, log_path, tuple(steps))
    stamp.unlink(missing_ok=True)  # a failed reinstall must not leave the old stamp behind
    if console is not None:
        _progress_runner(py, steps, log_path, console)
    else:
        for step in steps:
            run_pip(py, step, log_path)
    from gswarm.paths import atomic_write

    atomic_write(stamp, json.dumps({"digest": digest, "generation": generation, "hardware": hw,
                                    "python": str(py), "version": list(version)}, indent=2), mode=0o644)
    return EnvResult(py, venv_dir, True, log_path, tuple(steps))


def _check_version(python: Path, generation: str) -> tuple[int, int, int]:
    ver = python_version(python)
    if not supported(ver):
        raise SetupError(f"{python} is Python {'.'.join(map(str, ver))}; RL Swarm {generation} needs 3.10-3.12 (3.11 preferred). "
                         "Install Python 3.11 and pass --python, or remove the venv so GSwarm recreates it")
    return ver


def _stamp_ok(stamp: Path, digest: str) -> bool:
    try:
        return json.loads(stamp.read_text()).get("digest") == digest
    except (OSError, ValueError, AttributeError):
        return False


def stamp_status(checkout: Path, venv: Path | None = None) -> dict | None:
    """The stamp of the checkout's venv as a dict, or None when there is none (doctor)."""
    path = (Path(venv) if venv else Path(checkout) / ".venv") / STAMP
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def reinstall(settings, checkout: Path, generation: str | None = None, console=None) -> EnvResult:
    """The supervisor's reinstall hook (Recovery.REINSTALL_DEPS): force the install for ``checkout``.

    ``settings`` supplies ``python``, ``requirements`` and ``cpu_only``. Raises SetupError.
    """
    from gswarm.rlswarm.login import detect_generation

    gen = generation or detect_generation(Path(checkout))
    return ensure_environment(Path(checkout), gen, requirements=settings.requirements, python=settings.python,
                              reinstall=True, console=console, cpu_only=settings.cpu_only)
