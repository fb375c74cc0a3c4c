"""A faithful fake RL Swarm checkout and node for every generation (demo and tests)."""
