"""A faithful fake RL Swarm checkout and node for every generation (demo and tests).

Public API: :func:`gswarm.emulator.checkout.init_checkout` (write a checkout),
:func:`gswarm.emulator.demo.default_demo` (the ``gswarm run --emulated`` checkout
and env), :func:`gswarm.emulator.node.parse_faults` (fault schedule syntax).
The node reads ``GSWARM_EMU_PACE``, ``GSWARM_EMU_FAULTS``, ``GSWARM_EMU_ROUNDS``,
``GSWARM_EMU_START_ROUND``, ``GSWARM_EMU_MODAL_URL``; the script also
``GSWARM_EMU_POLL``, ``GSWARM_EMU_SERVER_DELAY``, ``GSWARM_EMU_PYTHON``.
"""
