"""The interactive prompts of ``run_rl_swarm.sh`` per generation, with GSwarm's answers.

Texts from ``shared/rlswarm/generations.md`` §3–§9 (and §2.3 for the answer
parsing). Patterns are searched in ANSI-stripped output and never depend on the
leading ">> " (v0.2.0 prompts lack it). Answers (all ASCII, sent with a newline):

* testnet ``[Y/n]`` (E1, E2) → ``Y``/``n``;
* swarm ``[A/b]`` (E2) → ``A``/``B``; parameters ``[0.5, 1.5, 7, 32, 72]`` (E2) → model size;
* Hugging Face push ``[y/N]`` (E1–E6) → ``y`` with a token, else ``N``; then the token (secret);
* model name (E3–E6) → ``settings.model_name`` or empty (= the config's default);
* AI Prediction Market (E5) → ``y``/``n`` (valid for both the 08-21+ ``[Y/n]`` and the
  older ``[y/N]`` wording, §8).

``unknown`` gets every known prompt, so script mode answers whichever appears.
"""

from __future__ import annotations

from typing import Any

from gswarm.supervisor.spec import PromptAnswer

TESTNET = r"Would you like to connect to the Testnet\?\s*\[Y/n\]"
SWARM = r"Which swarm would you like to join \(Math \(A\) or Math Hard \(B\)\)\?\s*\[A/b\]"
PARAMS = r"How many parameters \(in billions\)\?\s*\[0\.5, 1\.5, 7, 32, 72\]"
HF_PUSH = r"Would you like to push models you train in the RL swarm to the Hugging Face Hub\?\s*\[y/N\]"
HF_TOKEN = r"Enter your Hugging Face access token:"
MODEL_NAME = r"Enter the name of the model you want to use in huggingface repo/name format"
PRG = r"Would you like your model to participate in the AI Prediction Market\?\s*\[[YyNn]/[YyNn]\]"

# generation -> prompt names in the order the script asks them (§3-§9, §12)
ORDER: dict[str, tuple[str, ...]] = {
    "E0": (),
    "E1": ("testnet", "hf_push", "hf_token"),
    "E2": ("testnet", "swarm", "model_size", "hf_push", "hf_token"),
    "E3": ("hf_push", "hf_token", "model_name"),
    "E4": ("hf_push", "hf_token", "model_name"),
    "E5": ("hf_push", "hf_token", "model_name", "prg_game"),
    "E6": ("hf_push", "hf_token", "model_name"),
    "unknown": ("testnet", "swarm", "model_size", "hf_push", "hf_token", "model_name", "prg_game"),
}


def _answers(settings: Any) -> dict[str, PromptAnswer]:
    token = settings.hf_token.get_secret_value() if settings.hf_token is not None else ""
    return {
        "testnet": PromptAnswer("testnet", TESTNET, "Y" if settings.testnet else "n"),
        "swarm": PromptAnswer("swarm", SWARM, "B" if settings.swarm == "B" else "A"),
        "model_size": PromptAnswer("model_size", PARAMS, str(settings.model_size)),
        "hf_push": PromptAnswer("hf_push", HF_PUSH, "y" if token else "N"),
        "hf_token": PromptAnswer("hf_token", HF_TOKEN, token, secret=True),
        "model_name": PromptAnswer("model_name", MODEL_NAME, settings.model_name or ""),
        "prg_game": PromptAnswer("prg_game", PRG, "y" if settings.prg_game else "n"),
    }


def prompts_for(generation: str, settings: Any) -> tuple[PromptAnswer, ...]:
    """The ordered prompts of ``generation``'s script answered from ``settings``.

    ``settings`` is a :class:`gswarm.config.Settings` (fields testnet, swarm,
    model_size, hf_token, model_name, prg_game). The token prompt is only
    included when a token is configured (otherwise the push prompt is answered
    ``N`` and the script never asks for it). Unrecognised generations get the
    full ``unknown`` list.
    """
    answers = _answers(settings)
    names = ORDER.get(generation, ORDER["unknown"])
    return tuple(answers[n] for n in names if n != "hf_token" or answers["hf_token"].answer)
