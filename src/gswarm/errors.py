"""Exception tree of GSwarm.

Every error that reaches the operator is a :class:`GSwarmError` with a message
that names the field, file or option at fault and says what to do. The CLI maps
``exit_code`` to the process exit status.
"""

from __future__ import annotations


class GSwarmError(Exception):
    """Base class. ``exit_code`` is the CLI exit status for this error (int)."""

    exit_code = 1


class ConfigError(GSwarmError):
    """Invalid flag, environment variable, TOML file or profile value (exit 2)."""

    exit_code = 2


class CheckoutError(GSwarmError):
    """The folder is not an RL Swarm checkout, or is unusable (exit 2)."""

    exit_code = 2


class LaunchError(GSwarmError):
    """The node could not be started (missing interpreter, bad argv…)."""

    exit_code = 1


class LockError(GSwarmError):
    """Another ``gswarm run`` already supervises this checkout (exit 3)."""

    exit_code = 3


class LoginError(GSwarmError):
    """The modal-login flow failed: malformed userData.json, activation timeout… (exit 4)."""

    exit_code = 4


class SetupError(GSwarmError):
    """Environment setup (venv, pip, yarn) failed; the message names the log file (exit 5)."""

    exit_code = 5


class NodeFatal(GSwarmError):
    """The supervisor gave up on the node (crash loop or stop-and-alert cause) (exit 6)."""

    exit_code = 6


class StoreError(GSwarmError):
    """The SQLite store is unusable (foreign or corrupted file) (exit 7)."""

    exit_code = 7
