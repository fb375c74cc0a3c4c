"""Profiles: named, validated sets of options kept in ``<state_dir>/profiles/NAME.toml``.

A profile file is TOML with two tables::

    [profile]                       # about the profile (all optional)
    description = "RTX 4090, E5"
    generations = ["E4", "E5"]      # generations it is meant for (``gswarm profile validate`` checks)
    template = "gpu-24gb"           # the template it was made from

    [options]                       # any option of ``gswarm options`` except state_dir, config_file, profile
    model_name = "Gensyn/Qwen2.5-1.5B-Instruct"
    hf_token = "env:GSWARM_HF_TOKEN"

Profiles sit at the bottom of the configuration: defaults < profile < file < API override < env < flags
(:mod:`gswarm.config.settings`). Secrets never live in a profile: a secret option (``hf_token``,
``api_token``), a notification URL with credentials and a secret-named ``extra_env`` value may only be a
*reference* — ``"env:NAME"`` (read from the environment when the profile is used) or ``"file:/path"``
(the file's text, stripped). A profile holding a reference is written 0600, others 0644. Export
therefore never carries a secret. Errors name the profile and the option (:class:`ConfigError`).
Longer than ~150 lines: the file format, its validation, the references and the storage are one concern.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gswarm.errors import ConfigError
from gswarm.paths import atomic_write
from gswarm.redact import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIR = "profiles"
ACTIVE = "active"  # <state_dir>/profiles/active: the name chosen with `gswarm profile use`
LOCATION_FIELDS = frozenset({"state_dir", "config_file", "profile"})
SECRET_OPTIONS = frozenset({"hf_token", "api_token"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_REF = re.compile(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)")
_META_KEYS = ("description", "generations", "template")
PLACEHOLDER_URL = "json://localhost"


@dataclass
class Profile:
    """One profile: ``name``, ``options`` (option → value as written, references unresolved),
    ``description``, ``generations`` (claimed, e.g. ``("E4", "E5")``), ``template`` (or None), ``path``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    generations: tuple[str, ...] = ()
    template: str | None = None
    path: Path | None = None

    @property
    def has_reference(self) -> bool:
        """True when an option holds an ``env:``/``file:`` reference (the file is then 0600)."""
        return any(True for _ in _references(self.options))


def check_name(name: str) -> str:
    """``name`` if it is a valid profile name (letters, digits, ``_ . -``, at most 64); else ConfigError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == ACTIVE:
        raise ConfigError(f"profile name {name!r} is not valid; use letters, digits, '_', '.', '-' "
                          f"(at most 64, starting with a letter or digit; not {ACTIVE!r})")
    return name


def profiles_dir(state_dir: Path) -> Path:
    """``<state_dir>/profiles`` (not created)."""
    return Path(state_dir) / DIR


def profile_path(state_dir: Path, name: str) -> Path:
    """``<state_dir>/profiles/NAME.toml`` after :func:`check_name`."""
    return profiles_dir(state_dir) / f"{check_name(name)}.toml"


def is_reference(value: Any) -> bool:
    """True for ``"env:NAME"`` / ``"file:/path"`` strings."""
    return isinstance(value, str) and bool(_REF.fullmatch(value))


def _references(options: Mapping[str, Any]):
    """(option label, value) for every secret-bearing position of ``options`` (references or literals)."""
    for name in SECRET_OPTIONS:
        if options.get(name) is not None:
            yield name, options[name]
    urls = options.get("notify_urls")
    if isinstance(urls, str):  # one reference, or space-separated URLs as in GSWARM_NOTIFY_URLS
        if is_reference(urls) or any(redact_url(u) != u for u in urls.split()):
            yield "notify_urls", urls
    elif isinstance(urls, list):
        for i, u in enumerate(urls):
            if is_reference(u) or (isinstance(u, str) and redact_url(u) != u):
                yield f"notify_urls[{i}]", u
    for i, table in enumerate(options.get("notify_channels") or []):
        if isinstance(table, dict) and isinstance(table.get("url"), str):
            u = table["url"]
            if is_reference(u) or redact_url(u) != u:
                yield f"notify_channels[{i}].url", u
    env = options.get("extra_env")
    if isinstance(env, dict):
        from gswarm.config.settings import is_secret_name

        for k, v in env.items():
            if is_secret_name(k) or is_reference(v):
                yield f"extra_env[{k!r}]", v


def check_options(options: Mapping[str, Any], where: str) -> None:
    """Refuse what no profile may hold; ``where`` names it in errors (e.g. ``profile gpu (file …)``).

    ConfigError for an unknown option, a location option (state_dir, config_file, profile) and a literal
    secret; then the values are validated with :class:`gswarm.config.Settings` (references replaced by
    stand-ins), the message naming each bad option."""
    from gswarm.config.settings import Settings, explain

    for key in options:
        if key in LOCATION_FIELDS:
            raise ConfigError(f"option {key} (from {where}): a profile cannot set {key}; give it as a flag, "
                              f"GSWARM_{key.upper()} or in the config file")
        if key not in Settings.model_fields:
            raise ConfigError(f"option {key} (from {where}): unknown option; `gswarm options` lists every option name")
    for label, value in _references(options):
        if not is_reference(value):
            env = "GSWARM_" + label.split("[")[0].split(".")[0].upper()
            raise ConfigError(f"option {label} (from {where}): a profile may not hold a secret; write a reference "
                              f'instead, e.g. "env:{env}" or "file:/path/to/secret" (0600), and keep the secret there')
    try:
        Settings.model_validate(stand_ins(options))
    except Exception as exc:  # pydantic ValidationError
        if not hasattr(exc, "errors"):
            raise
        raise ConfigError(explain(exc, {k: where for k in options}, title=f"invalid {where}")) from None


def stand_ins(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with references replaced by harmless values of the right type (for validation only)."""
    return _replace(options, lambda ref: "stand-in-secret", url=lambda ref: PLACEHOLDER_URL)


def _replace(options: Mapping[str, Any], value_of, url=None) -> dict[str, Any]:
    url = url or value_of
    out = dict(options)
    for name in SECRET_OPTIONS:
        if is_reference(out.get(name)):
            out[name] = value_of(out[name])
    urls = out.get("notify_urls")
    if isinstance(urls, str) and is_reference(urls):
        out["notify_urls"] = url(urls)
    elif isinstance(urls, list):
        out["notify_urls"] = [url(u) if is_reference(u) else u for u in urls]
    if isinstance(out.get("notify_channels"), list):
        out["notify_channels"] = [{**t, "url": url(t["url"])} if isinstance(t, dict) and is_reference(t.get("url")) else t
                                  for t in out["notify_channels"]]
    if isinstance(out.get("extra_env"), dict):
        out["extra_env"] = {k: value_of(v) if is_reference(v) else v for k, v in out["extra_env"].items()}
    return out


def resolve(profile: Profile, env: Mapping[str, str]) -> dict[str, Any]:
    """The profile's options with every reference replaced by the secret it points to.

    ConfigError naming the profile, the option and the variable/file when a reference cannot be resolved."""
    where = f"profile {profile.name}"

    def value_of(ref: str) -> str:
        kind, _, target = ref.partition(":")
        if kind == "env":
            if not env.get(target, "").strip():
                raise ConfigError(f"{where}: reference {ref!r} needs the environment variable {target}; export it "
                                  f"(or remove the option from the profile)")
            return env[target].strip()
        try:
            return Path(target).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: reference {ref!r}: the file cannot be read ({exc.strerror or exc}); "
                              "create it (mode 0600) or fix the path") from None

    return _replace(profile.options, value_of)


def parse(text: str, name: str, path: Path | None = None) -> Profile:
    """A :class:`Profile` from TOML text; ConfigError naming the file (or profile) for bad TOML, a bad
    ``[profile]`` table, an unknown table or a bad option (:func:`check_options`)."""
    where = f"profile {name}" + (f" ({path})" if path else "")
    try:
        data = tomllib.loads(text.lstrip("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}; fix the file") from None
    extra = sorted(set(data) - {"profile", "options"})
    if extra:
        raise ConfigError(f"{where}: unknown table or key {extra[0]!r}; a profile has only [profile] and [options]")
    meta, options = data.get("profile", {}), data.get("options", {})
    if not isinstance(meta, dict) or not isinstance(options, dict):
        raise ConfigError(f"{where}: [profile] and [options] must be tables")
    bad = sorted(set(meta) - set(_META_KEYS))
    if bad:
        raise ConfigError(f"{where}: [profile] key {bad[0]!r} is unknown; allowed: {', '.join(_META_KEYS)}")
    gens = meta.get("generations", [])
    if not isinstance(gens, list) or not all(isinstance(g, str) and re.fullmatch(r"E[0-6]", g) for g in gens):
        raise ConfigError(f'{where}: [profile] generations must be a list like ["E4", "E5"] (E0 … E6)')
    options = {k.replace("-", "_"): v for k, v in options.items()}
    check_options(options, where)
    return Profile(name, options, str(meta.get("description", "")), tuple(gens), meta.get("template"), path)


def dump(profile: Profile) -> str:
    """TOML text of ``profile`` (options sorted; None values left out: TOML has no null)."""
    lines = [f"# GSwarm profile {profile.name}: options below the config file, GSWARM_* and flags",
             "# (defaults < profile < file < API override < env < flags). Secrets only as env:/file: references.",
             "[profile]"]
    if profile.description:
        lines.append(f"description = {_value(profile.description)}")
    if profile.generations:
        lines.append(f"generations = {_value(list(profile.generations))}")
    if profile.template:
        lines.append(f"template = {_value(profile.template)}")
    lines += ["", "[options]"]
    lines += [f"{k} = {_value(v)}" for k, v in sorted(profile.options.items()) if v is not None]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, os.PathLike)):
        return json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise ConfigError(f"cannot write {type(v).__name__} {v!r} into a profile")


def read(state_dir: Path, name: str) -> Profile:
    """The stored profile ``name``; ConfigError naming it and listing the stored ones when it is missing."""
    path = profile_path(state_dir, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(names(state_dir)) or "none yet"
        raise ConfigError(f"profile {name} does not exist in {profiles_dir(state_dir)} (stored: {known}); "
                          "create it with `gswarm profile save` or `gswarm init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"profile {name} ({path}) cannot be read ({exc}); fix or remove the file") from None
    return parse(text, name, path)


def write(state_dir: Path, profile: Profile) -> Path:
    """Save ``profile`` (validated again) atomically; 0600 when it holds a reference, else 0644. The folder
    is created 0700. Returns the path."""
    check_options(profile.options, f"profile {profile.name}")
    path = profile_path(state_dir, profile.name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, dump(profile), mode=0o600 if profile.has_reference else 0o644)
    return path


def names(state_dir: Path) -> list[str]:
    """Names of the stored profiles, sorted."""
    folder = profiles_dir(state_dir)
    return sorted(p.stem for p in folder.glob("*.toml") if _NAME.fullmatch(p.stem)) if folder.is_dir() else []


def active(state_dir: Path) -> str | None:
    """The profile chosen with ``gswarm profile use`` (None when none is)."""
    try:
        text = (profiles_dir(state_dir) / ACTIVE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def set_active(state_dir: Path, name: str | None) -> None:
    """Make ``name`` the profile used when none is given (None: no default profile)."""
    folder = profiles_dir(state_dir)
    if name is None:
        (folder / ACTIVE).unlink(missing_ok=True)
        return
    read(state_dir, name)  # must exist and be valid
    atomic_write(folder / ACTIVE, name + "\n", mode=0o644)


def diff(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(option, left value, right value)`` for every option whose values differ (missing = None), sorted."""
    keys = sorted(set(left) | set(right))
    return [(k, left.get(k), right.get(k)) for k in keys if _norm(left.get(k)) != _norm(right.get(k))]


def _norm(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str, sort_keys=True))
