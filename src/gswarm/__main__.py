"""Entry point for ``python -m gswarm``."""

from gswarm.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
