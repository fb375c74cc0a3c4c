"""Profile templates for common setups: what each sets and why.

Every template claims the generations it is meant for; ``tests/test_profile_templates.py`` checks that it
validates (no bad value, no option meaningless there, models from that generation's own pool) against each.
Facts come from ``shared/rlswarm/generations.md`` (§ numbers below) and the failure corpus
(``shared/failures/NNN-*.txt``). Batch sizes are not an option of any generation GSwarm can run unmodified
from E3 on: the launcher reads the fixed Hydra config ``rgym_exp/config`` / ``code_gen_exp/config`` (edits in
``configs/`` have no effect since v0.5.2, §7.3), so memory is managed by choosing the model — which is also
where the out-of-memory ladder of the restart policy starts (it steps down through the generation's pool
from the model in use, ``supervisor/_policy_oom.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gswarm.config.profiles import Profile

_RGYM = ("E3", "E4", "E5")  # genrl-swarm / rgym_exp: the same model pool (§6, §7.4, §8)


@dataclass(frozen=True)
class Template:
    """``name``, ``title`` (the setup), ``generations`` claimed, ``options`` set and ``why`` (option → reason)."""

    name: str
    title: str
    generations: tuple[str, ...]
    options: dict
    why: dict

    def profile(self, name: str | None = None) -> Profile:
        """A new :class:`Profile` holding this template's options."""
        return Profile(name or self.name, dict(self.options), self.title, self.generations, self.name)


_PIN = ("without MODEL_NAME E4/E5 pick a model at random at every start (generations.md §7.4), so memory use "
        "changes between restarts; pinning it makes runs comparable and gives the OOM ladder a known start")
_SLOW = ("GSwarm's choice, not an RL Swarm fact: the 60 min default for E3-E6 (monitor/health.py) is tuned for "
         "GPUs; a slower device finishing a round later would be restarted while healthy")

TEMPLATES: tuple[Template, ...] = (
    Template("gpu-8-12gb", "Consumer NVIDIA GPU with 8-12 GB (RTX 3060/4060/4070)", _RGYM,
             {"hardware": "gpu", "model_name": "Gensyn/Qwen2.5-0.5B-Instruct"},
             {"hardware": "GPU requirements without relying on detection",
              "model_name": "the smallest model of the pool; a 12 GB RTX 4070 Ti still hit CUDA OOM in the backward pass "
                            "after 1-3 h (failures/001); " + _PIN + "; the ladder then only adds "
                            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"}),
    Template("gpu-24gb", "NVIDIA GPU with 24 GB (RTX 3090/4090)", _RGYM,
             {"hardware": "gpu", "model_name": "Gensyn/Qwen2.5-1.5B-Instruct"},
             {"hardware": "GPU requirements without relying on detection",
              "model_name": "below 40 GiB the launcher would only pick 0.5B/0.6B models (§7.4); 24 GB holds the 1.5B one, "
                            "and on CUDA OOM the ladder steps down to Qwen3-0.6B, then 0.5B; " + _PIN}),
    Template("gpu-80gb", "Data-centre NVIDIA GPU with 40-80 GB (A100/H100)", _RGYM,
             {"hardware": "gpu", "model_name": "dnotitia/Smoothie-Qwen3-1.7B"},
             {"hardware": "GPU requirements without relying on detection",
              "model_name": "the largest model of the >= 40 GiB pool (§7.4: AceInstruct-1.5B, Smoothie-Qwen3-1.7B, "
                            "Qwen2.5-1.5B); the OOM ladder starts there; " + _PIN}),
    Template("apple-mps", "Apple Silicon Mac (MPS)", _RGYM,
             {"hardware": "mps", "model_name": "Gensyn/Qwen2.5-0.5B-Instruct",
              "extra_env": {"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.0"}, "stall_timeout": 7200.0},
             {"hardware": "the Apple requirements flavour",
              "model_name": "below 40 GiB (MPS included) the launcher picks only 0.5B/0.6B models (§7.4); " + _PIN,
              "extra_env": "README's workaround for the MPS high-watermark OOM (§10; failures/003 hit the 27.2 GB cap), "
                           "set from the first start instead of after the first crash",
              "stall_timeout": "2 h: " + _SLOW}),
    Template("cpu-vps-32gb", "CPU-only server with at least 32 GB RAM", _RGYM,
             {"hardware": "cpu", "model_name": "Gensyn/Qwen2.5-0.5B-Instruct", "stall_timeout": 10800.0,
              "oom_step_up_after": 86400.0},
             {"hardware": "CPU requirements (no CUDA wheels)",
              "model_name": "the smallest model: CPU nodes are killed by the kernel OOM killer (failures/006, 008, 010); "
                            "the README asks for at least 32 GB RAM (v0.7.0 README.md)",
              "stall_timeout": "3 h: " + _SLOW,
              "oom_step_up_after": "1 day instead of 6 h before trying a bigger model again after a system OOM: "
                                   "a RAM leak showed up only after ~18 h (failures/005)"}),
    Template("codezero-ollama", "CodeZero (E6) with its ollama reward model", ("E6",),
             {"model_name": "Qwen/Qwen2.5-Coder-0.5B-Instruct", "ollama_port": 11434},
             {"model_name": "the solver below 40 GiB VRAM (§9.4: Qwen2.5-Coder-1.5B at >= 40 GiB, else 0.5B); pinning it "
                            "keeps the choice stable when the GPU is shared with ollama's qwen2.5-coder:1.5b reward model",
              "ollama_port": "ollama's default port, where the launcher expects it (§9.4, OLLAMA_HOST) and where GSwarm's "
                             "ollama sidecar checks/starts it; reward calls silently score 0 when ollama is down (§9.7)"}),
)
BY_NAME = {t.name: t for t in TEMPLATES}


def propose(gpu_vram_gib: float | None, apple_silicon: bool, generation: str | None = None) -> Template:
    """The template for a machine: E6 → codezero-ollama; NVIDIA by VRAM (< 16 GiB, < 40 GiB, more);
    Apple Silicon → apple-mps; otherwise cpu-vps-32gb."""
    if generation == "E6":
        return BY_NAME["codezero-ollama"]
    if gpu_vram_gib:
        return BY_NAME["gpu-8-12gb" if gpu_vram_gib < 16 else "gpu-24gb" if gpu_vram_gib < 40 else "gpu-80gb"]
    return BY_NAME["apple-mps" if apple_silicon else "cpu-vps-32gb"]
