"""Configuration: pydantic models, load order defaults < TOML file < ``GSWARM_*`` env < flags."""

from gswarm.config.settings import Settings, load_settings, redacted_dict

__all__ = ["Settings", "load_settings", "redacted_dict"]
