"""The embedded demo of ``gswarm run --emulated``: an E6 checkout plus a fault schedule.

Within about a minute a new user sees normal rounds, a crash with a classifiable
cause (the ``dht_daemon_timeout`` text of ``failure_texts.json``, on the first
start only), the supervisor's backoff and restart, and normal rounds again.
"""

from __future__ import annotations

from pathlib import Path

from gswarm.emulator.checkout import init_checkout

DEMO_GENERATION = "E6"
DEMO_PACE = 1.0  # seconds per step: an E6 round takes about three steps
DEMO_FAULTS = "crash:dht_daemon_timeout@15#1"  # first start crashes after ~15 s; later starts run normally


def default_demo(base_dir: Path, generation: str = DEMO_GENERATION, pace: float = DEMO_PACE,
                 faults: str = DEMO_FAULTS) -> tuple[Path, dict[str, str]]:
    """Create (or replace) ``<base_dir>/rl-swarm-emulated``, logged in, and return it with the node's extra env.

    The env holds ``GSWARM_EMU_PACE`` (seconds per step) and ``GSWARM_EMU_FAULTS``
    (schedule, see :func:`gswarm.emulator.node.parse_faults`); the supervisor
    merges it into the launch spec's env (e.g. via ``Settings.extra_env``).
    Raises CheckoutError when that folder exists and is not an emulated checkout.
    """
    checkout = init_checkout(Path(base_dir) / "rl-swarm-emulated", generation, logged_in=True, force=True)
    return checkout, {"GSWARM_EMU_PACE": f"{pace:g}", "GSWARM_EMU_FAULTS": faults}
