"""GSwarm: a supervisor for Gensyn RL Swarm nodes.

GSwarm is a third-party tool, not affiliated with Gensyn. It wraps the official
RL Swarm node (https://github.com/gensyn-ai/rl-swarm) without modifying it.
"""

__version__ = "0.1.0"
