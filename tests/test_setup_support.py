"""Helpers for the setup/login tests (no tests here): tiny wheels, hand-laid checkouts, fake tools.

Wheels are written by hand as zip files (no network, no build backend). Checkouts carry the
distinguishing files of generations.md §1 so the real detector recognises them.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import stat
import sys
import zipfile
from pathlib import Path

BACKEND = '''
import base64, hashlib, os, zipfile
NAME, VERSION, FAIL = {name!r}, {version!r}, {fail!r}
def _wheel(directory, files):
    dist = NAME.replace("-", "_")
    info = f"{{dist}}-{{VERSION}}.dist-info"
    files = dict(files)
    files[f"{{info}}/METADATA"] = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    files[f"{{info}}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    rec = []
    for k, v in files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
        rec.append(f"{{k}},sha256={{d}},{{len(v.encode())}}")
    files[f"{{info}}/RECORD"] = "\\n".join(rec + [f"{{info}}/RECORD,,"]) + "\\n"
    name = f"{{dist}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return name
def get_requires_for_build_wheel(config_settings=None): return []
def get_requires_for_build_editable(config_settings=None): return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if FAIL:
        raise SystemExit("error: command 'gcc' failed: No such file or directory")
    return _wheel(wheel_directory, {{NAME.replace("-", "_") + "/__init__.py": "EDITABLE = False\\n"}})
def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    src = os.path.join(os.path.abspath(os.getcwd()), "src")
    return _wheel(wheel_directory, {{"_" + NAME.replace("-", "_") + "_editable.pth": src + "\\n"}})
'''


def make_wheel(where: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """Write ``<dist>-<version>-py3-none-any.whl`` with module ``<dist>`` (``__version__``)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: gswarm-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rec = []
    for k, v in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
        rec.append(f"{k},sha256={digest},{len(v.encode())}")
    files[f"{info}/RECORD"] = "\n".join(rec + [f"{info}/RECORD,,"]) + "\n"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return path


def make_project(where: Path, name: str, version: str = "0.1.1", fail: bool = False) -> Path:
    """A local project with an in-tree PEP 517/660 backend (no setuptools needed offline)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "pyproject.toml").write_text(
        f'[build-system]\nrequires = []\nbuild-backend = "_backend"\nbackend-path = ["."]\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n[project.optional-dependencies]\nexamples = []\n')
    (where / "_backend.py").write_text(BACKEND.format(name=name, version=version, fail=fail))
    pkg = where / "src" / name.replace("-", "_")
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("EDITABLE = True\n")
    return where


WHEELS = [("gsw-hivemind", "1.0"), ("gsw-base", "1.0"), ("gsw-gpu", "1.0"), ("gsw-cpu", "1.0"),
          ("gensyn-genrl", "0.1.4"), ("gensyn-genrl", "0.1.11"), ("gensyn-genrl", "0.3.0"),
          ("reasoning-gym", "0.1.20"), ("trl", "0.1"), ("gsw-c", "1.0"), ("gsw-c", "2.0")]


def make_wheelhouse(where: Path) -> Path:
    for name, ver in WHEELS:
        make_wheel(where, name, ver)
    make_wheel(where, "gsw-a", "1.0", ("gsw-c==1.0",))
    return where


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lay_checkout(root: Path, gen: str) -> Path:
    """A checkout of ``gen`` with the distinguishing files (§1) and requirements naming test wheels."""
    script = "#!/bin/bash\nset -euo pipefail\n"
    if gen in ("E0", "E1", "E2"):
        write(root / "hivemind_exp/gsm8k/train_single_gpu.py", "import gsw_base\nprint('Joining round: 1 starting at stage: 0', flush=True)\n")
        write(root / "hivemind_exp/__init__.py")
        write(root / "hivemind_exp/gsm8k/__init__.py")
    if gen in ("E0", "E1"):
        write(root / "requirements-hivemind.txt", "gsw-hivemind\n")
        write(root / "requirements.txt", "gsw-base\n")
        write(root / "requirements_gpu.txt", "gsw-gpu\n")
    if gen == "E2":
        write(root / "requirements-cpu.txt", "gsw-base\ngsw-cpu\n")
        write(root / "requirements-gpu.txt", "gsw-base\ngsw-gpu\n")
        write(root / "hivemind_exp/dapo/__init__.py")
    if gen in ("E3",):
        script += "git clone https://github.com/gensyn-ai/genrl-swarm.git\n"
        make_project(root / "genrl-swarm", "genrl-swarm")
        write(root / "hivemind_exp/__init__.py")
    if gen in ("E4", "E5"):
        write(root / "rgym_exp/__init__.py")
        write(root / "rgym_exp/runner/__init__.py")
        write(root / "rgym_exp/runner/swarm_launcher.py",
              "import gensyn_genrl, os\nprint('Starting round: 1/1000000. genrl', gensyn_genrl.__version__, "
              "'ORG', os.environ.get('ORG_ID'), flush=True)\n")
        tag = "0.1.4" if gen == "E4" else "0.1.11"
        script += (f'GENRL_TAG="{tag}"\npip install --upgrade pip\npip install gensyn-genrl==${{GENRL_TAG}}\n'
                   "pip install reasoning-gym>=0.1.20  # unquoted as in the real script\n")
        if gen == "E4":
            script += "pip install trl\n"
    if gen == "E5":
        write(root / "modal-login/app/api/guess-answer/route.ts", "export {}\n")
        script += 'PRG_CONTRACT="0x1"\nexport PRG_GAME=true\n'
    if gen == "E6":
        write(root / "code_gen_exp/__init__.py")
        write(root / "code_gen_exp/runner/__init__.py")
        write(root / "code_gen_exp/runner/swarm_launcher.py", "import gensyn_genrl\nprint('Joining CodeZero Swarm', flush=True)\n")
        write(root / "code_gen_exp/config/code-gen-swarm.yaml", "x: 1\n")
        write(root / "code_gen_exp/requirements.txt", "gensyn-genrl==0.3.0\n")
    if gen != "E0":
        write(root / "modal-login/package.json", '{"name": "modal-login"}\n')
        write(root / "modal-login/yarn.lock", "# lock\n")
        write(root / "modal-login/app/page.tsx", "export {}\n")
        write(root / "modal-login/.env", "NEXT_PUBLIC_ALCHEMY_API_KEY=pub\nNEXT_PUBLIC_PAYMASTER_POLICY_ID=pol\n"
              "SMART_CONTRACT_ADDRESS=0xdefault\n")
        write(root / "modal-login/temp-data/.gitkeep")
        script += "yarn install --immutable\nyarn build\nyarn start >> logs/yarn.log 2>&1 &\n"
    write(root / "run_rl_swarm.sh", script)
    return root


def fake_bin(where: Path, name: str, body: str) -> Path:
    """An executable ``name`` (Python script) in ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env(wheelhouse: Path) -> dict[str, str]:
    """pip variables that make every install offline, from ``wheelhouse``."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def apply_env(monkeypatch, env: dict[str, str]) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)



import pytest  # noqa: E402

_CACHE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Tiny wheels for every requirement the laid-out checkouts name (built once per session)."""
    if "wheels" not in _CACHE:
        _CACHE["wheels"] = make_wheelhouse(tmp_path_factory.mktemp("wheels"))
    return _CACHE["wheels"]


@pytest.fixture(scope="session")
def session_checkout(tmp_path_factory, wheelhouse) -> Path:
    """An E4 checkout taken through the real default path once per session: ``<checkout>/.venv``
    created by :func:`ensure_environment` (real ``python -m venv`` with pip, ~6 s) and the
    plan installed offline. Its venv is shared by the other tests (:func:`shared_venv`)."""
    if "checkout" not in _CACHE:
        import os as _os

        from gswarm.rlswarm import setup as st

        co = lay_checkout(tmp_path_factory.mktemp("session") / "co", "E4")
        saved = {k: _os.environ.get(k) for k in offline_env(wheelhouse)}
        _os.environ.update(offline_env(wheelhouse))
        try:
            _CACHE["result"] = st.ensure_environment(co, "E4", hardware="cpu")
        finally:
            for k, v in saved.items():
                if v is None:
                    _os.environ.pop(k, None)
                else:
                    _os.environ[k] = v
        _CACHE["checkout"] = co
    return _CACHE["checkout"]


@pytest.fixture(scope="session")
def shared_venv(session_checkout) -> Path:
    """The real venv of :func:`session_checkout`, shared by tests across modules."""
    return session_checkout.resolve() / ".venv"


@pytest.fixture
def offline(monkeypatch, wheelhouse):
    """Every pip call in the test installs from the wheelhouse only."""
    apply_env(monkeypatch, offline_env(wheelhouse))
    return wheelhouse


async def drive(task, clock, step: float = 1.0, limit: int = 5000):
    """Advance the fake clock by ``step`` with tiny real pauses until ``task`` is done; return its result."""
    import asyncio

    for _ in range(limit):
        if task.done():
            break
        clock.advance(step)
        await asyncio.sleep(0.01)
    return await task
