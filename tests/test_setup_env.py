"""Python environment: install plans per generation, real venv + offline pip, stamp, failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gswarm.errors import SetupError
from gswarm.rlswarm import setup as st
from gswarm.rlswarm.generations import detect
from tests.test_setup_support import (lay_checkout, make_project, offline, session_checkout, shared_venv,  # noqa: F401
                                      wheelhouse)

GENS = ["E0", "E1", "E2", "E3", "E4", "E5", "E6"]


def _import(py: Path, module: str) -> str:
    return subprocess.run([str(py), "-c", f"import {module} as m; print(getattr(m, '__version__', getattr(m, 'EDITABLE', '')))"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("gen", GENS)
def test_checkouts_are_detected_as_laid_out(tmp_path, gen):
    assert detect(lay_checkout(tmp_path / gen, gen)).generation == gen


def test_install_plans_follow_generation_and_hardware(tmp_path):
    e1 = lay_checkout(tmp_path / "e1", "E1")
    assert [s.label for s in st.install_plan(e1, "E1", "cpu")] == ["requirements-hivemind.txt", "requirements.txt"]
    assert [s.label for s in st.install_plan(e1, "E1", "gpu")][-1] == "requirements_gpu.txt"
    assert [s.label for s in st.install_plan(e1, "E1", "mps")] == ["requirements-hivemind.txt", "requirements.txt"]
    e2 = lay_checkout(tmp_path / "e2", "E2")
    assert [s.label for s in st.install_plan(e2, "E2", "cpu")] == ["requirements-cpu.txt"]
    gpu = st.install_plan(e2, "E2", "gpu")
    assert gpu[0].label == "requirements-gpu.txt" and gpu[1].args == ("--no-build-isolation", "flash-attn")
    e5 = lay_checkout(tmp_path / "e5", "E5")
    assert st.install_plan(e5, "E5", "gpu")[0].args == ("gensyn-genrl==0.1.11", "reasoning-gym>=0.1.20")
    e4 = lay_checkout(tmp_path / "e4", "E4")
    assert st.install_plan(e4, "E4", "cpu")[0].args == ("gensyn-genrl==0.1.4", "reasoning-gym>=0.1.20", "trl")
    e3 = lay_checkout(tmp_path / "e3", "E3")
    assert st.install_plan(e3, "E3", "cpu")[0].args == ("-e", f"{e3 / 'genrl-swarm'}[examples]")
    e6 = lay_checkout(tmp_path / "e6", "E6")
    assert st.install_plan(e6, "E6", "cpu")[0].files == (e6 / "code_gen_exp/requirements.txt",)
    custom = tmp_path / "mine.txt"
    custom.write_text("trl\n")
    assert st.install_plan(e6, "E6", "cpu", custom)[0].args == ("-r", str(custom))


def test_missing_files_name_the_file_and_what_to_do(tmp_path):
    e3 = lay_checkout(tmp_path / "e3", "E3")
    import shutil

    shutil.rmtree(e3 / "genrl-swarm")
    with pytest.raises(SetupError, match=r"genrl-swarm is missing.*git clone --branch v0.1.1"):
        st.install_plan(e3, "E3", "cpu")
    e1 = lay_checkout(tmp_path / "e1", "E1")
    (e1 / "requirements.txt").unlink()
    with pytest.raises(SetupError, match="requirements.txt is missing"):
        st.install_plan(e1, "E1", "cpu")
    with pytest.raises(SetupError, match="option requirements"):
        st.install_plan(e1, "E1", "cpu", tmp_path / "nope.txt")


def test_python_range():
    assert st.supported((3, 10, 0)) and st.supported((3, 12, 4)) and not st.supported((3, 13, 0)) and not st.supported((3, 9, 18))


def test_unsupported_interpreter_is_refused(tmp_path):
    fake = tmp_path / "python3.13"
    fake.write_text("#!/bin/sh\necho 3 13 1\n")
    fake.chmod(0o755)
    with pytest.raises(SetupError, match=r"no supported Python \(3.10-3.12\).*3.13.1"):
        st.find_base_python([str(fake)])


@pytest.mark.parametrize("gen", GENS)
def test_each_generation_installs_offline_into_a_real_venv(tmp_path, gen, shared_venv, offline):
    co = lay_checkout(tmp_path / gen, gen)
    res = st.ensure_environment(co, gen, hardware="gpu" if gen == "E1" else "cpu", venv=shared_venv)
    assert res.installed and res.python == shared_venv / "bin" / "python"
    module, expect = {"E0": ("gsw_base", "1.0"), "E1": ("gsw_gpu", "1.0"), "E2": ("gsw_cpu", "1.0"),
                      "E3": ("genrl_swarm", "True"), "E4": ("gensyn_genrl", "0.1.4"), "E5": ("gensyn_genrl", "0.1.11"),
                      "E6": ("gensyn_genrl", "0.3.0")}[gen]
    assert _import(res.python, module) == expect
    log = res.log_path.read_text()  # the venv is shared: an earlier test may have installed the same wheel already
    assert "[exit 0]" in log and ("Successfully installed" in log or "Requirement already satisfied" in log)
    again = st.ensure_environment(co, gen, hardware="gpu" if gen == "E1" else "cpu", venv=shared_venv)
    assert not again.installed  # stamp matches: pip not run


def test_stamp_tracks_requirement_contents_and_reinstall_flag(tmp_path, shared_venv, offline):
    co = lay_checkout(tmp_path / "e6", "E6")
    assert st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv).installed
    assert not st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv).installed
    assert st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv, reinstall=True).installed
    (co / "code_gen_exp/requirements.txt").write_text("gensyn-genrl==0.3.0\nreasoning-gym\n")
    assert st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv).installed
    assert _import(shared_venv / "bin/python", "reasoning_gym") == "0.1.20"


@pytest.mark.parametrize("content, cause", [
    ("gsw-a==1.0\ngsw-c==2.0\n", "version conflict"),
    ("does-not-exist==9\n", "package not found"),
])
def test_failures_are_classified_and_no_stamp_is_written(tmp_path, shared_venv, offline, content, cause):
    co = lay_checkout(tmp_path / "e6", "E6")
    (co / "code_gen_exp/requirements.txt").write_text(content)
    (shared_venv / st.STAMP).unlink(missing_ok=True)
    with pytest.raises(SetupError) as ei:
        st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv)
    msg = str(ei.value)
    assert f"({cause})" in msg and str(co / "logs/gswarm-setup.log") in msg
    assert not (shared_venv / st.STAMP).exists()
    assert ei.value.exit_code == 5


def test_build_failure_is_classified(tmp_path, shared_venv, offline):
    proj = make_project(tmp_path / "broken", "gsw-broken", fail=True)
    req = tmp_path / "req.txt"
    req.write_text(f"{proj}\n")
    co = lay_checkout(tmp_path / "e6", "E6")
    with pytest.raises(SetupError, match=r"\(build failure\)"):
        st.ensure_environment(co, "E6", hardware="cpu", venv=shared_venv, requirements=req)


def test_classifier_recognises_network_errors():
    out = ("WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(... "
           "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')'\n"
           "ERROR: No matching distribution found for torch")
    assert st.classify_pip_failure(out)[0] == "no network"
    assert st.classify_pip_failure("ERROR: something odd")[0] == "unknown"


def test_real_venv_is_created_in_the_checkout_and_reinstall_hook_forces(session_checkout, offline):
    co = session_checkout.resolve()
    from tests.test_setup_support import _CACHE

    res = _CACHE["result"]  # what ensure_environment returned when it created the venv (session fixture)
    assert res.venv == co / ".venv" and res.installed and res.python == co / ".venv/bin/python"
    assert (co / ".venv/pyvenv.cfg").is_file()
    assert _import(res.python, "trl") == "0.1"
    from gswarm.config import load_settings

    settings = load_settings({"rl_swarm_dir": co}, env={})
    assert st.reinstall(settings, co).installed  # the supervisor's REINSTALL_DEPS hook
    assert st.stamp_status(co)["generation"] == "E4"
    assert st.ensure_environment(co, "E4", hardware=st.stamp_status(co)["hardware"]).installed is False


def test_never_installs_into_a_python_outside_a_venv(tmp_path):
    co = lay_checkout(tmp_path / "e6", "E6")
    fake = tmp_path / "usr/bin/python3"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 3 11 7\n")
    fake.chmod(0o755)
    with pytest.raises(SetupError, match="not the interpreter of a venv"):
        st.ensure_environment(co, "E6", hardware="cpu", python=fake)
    assert not (tmp_path / "usr" / st.STAMP).exists()
