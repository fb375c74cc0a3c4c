"""Templates: each validates against every generation it claims (values, options meaningful there, models from
that generation's own pool), loads as a profile, and the proposal follows the hardware."""

from __future__ import annotations

import pytest

from gswarm.cli.profile import generation_problems
from gswarm.config import load_settings, profiles
from gswarm.config.templates import BY_NAME, TEMPLATES, propose

EXPECTED = {"gpu-8-12gb", "gpu-24gb", "gpu-80gb", "apple-mps", "cpu-vps-32gb", "codezero-ollama"}


def test_the_six_setups_exist_and_say_why_for_every_option() -> None:
    assert {t.name for t in TEMPLATES} == EXPECTED
    for t in TEMPLATES:
        assert set(t.why) == set(t.options), t.name  # every option it sets has its reason
        assert t.generations, t.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_validates_against_every_generation_it_claims(name, tmp_path) -> None:
    t = BY_NAME[name]
    for gen in t.generations:
        assert generation_problems(t.profile(), gen) == [], (name, gen)
    profiles.write(tmp_path, t.profile("x"))
    s = load_settings({"state_dir": str(tmp_path), "profile": "x"}, env={})
    assert {k: getattr(s, k) for k in t.options} == t.options


def test_a_template_outside_its_generations_is_reported() -> None:
    found = generation_problems(BY_NAME["gpu-24gb"].profile(), "E6")
    assert found == [
        "profile gpu-24gb is meant for E3, E4, E5, not E6",
        "option model_name (profile gpu-24gb): 'Gensyn/Qwen2.5-1.5B-Instruct' is not a model E6 picks itself "
        "(Qwen/Qwen2.5-Coder-1.5B-Instruct, deepseek-ai/deepseek-coder-1.3b-instruct, Qwen/Qwen2.5-Coder-0.5B-Instruct); "
        "fine only if you know it trains there"]
    assert generation_problems(BY_NAME["codezero-ollama"].profile(), "E2")[0].startswith(
        "--model-name means nothing for E2 and is ignored")


@pytest.mark.parametrize("vram,apple,gen,expected", [
    (8.0, False, None, "gpu-8-12gb"), (11.7, False, "E4", "gpu-8-12gb"), (24.0, False, None, "gpu-24gb"),
    (80.0, False, None, "gpu-80gb"), (None, True, None, "apple-mps"), (None, False, None, "cpu-vps-32gb"),
    (24.0, False, "E6", "codezero-ollama")])
def test_proposal_follows_the_hardware(vram, apple, gen, expected) -> None:
    assert propose(vram, apple, gen).name == expected
