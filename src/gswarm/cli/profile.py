"""``gswarm profile list|show|save|use|diff|rm|export|import|validate`` and the template list.

Profiles live in ``<state_dir>/profiles/NAME.toml`` (:mod:`gswarm.config.profiles`); templates are built in
(:mod:`gswarm.config.templates`). ``show``, ``diff``, ``validate`` and ``save --template`` accept a stored
profile name, a template name (``show``/``validate``/``save --template``) or a path to a ``.toml`` profile
file. Exit codes: 0 ok; 1 ``validate`` found options meaningless for the generation; 2 bad input (unknown
profile, invalid value — the message names the profile and the option). Longer than ~150 lines: one thin
function per subcommand plus the generation check they share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gswarm.cli._common import ConfigFile, JsonOut, RlSwarmDir, StateDir
from gswarm.config import profiles as P
from gswarm.config.templates import BY_NAME as TEMPLATES, TEMPLATES as ALL_TEMPLATES
from gswarm.errors import ConfigError
from gswarm.paths import state_dir as resolve_state_dir

out = Console(highlight=False, soft_wrap=True)


def _folder(state_dir: Optional[Path], writable: bool = False) -> Path:
    """The state dir: --state-dir, else GSWARM_STATE_DIR, else the default (not the whole configuration:
    a broken profile must not keep ``gswarm profile`` from listing or fixing it)."""
    import os

    env = os.environ.get("GSWARM_STATE_DIR", "").strip()
    return resolve_state_dir(state_dir or (Path(env) if env else None), writable=writable)


def _get(ref: str, folder: Path, templates: bool = True) -> P.Profile:
    """A stored profile, a template (``templates``) or a profile file (a path ending in .toml)."""
    if ref.endswith(".toml") or "/" in ref:
        path = Path(ref).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"profile file {path} cannot be read ({exc.strerror or exc}); check the path") from None
        return P.parse(text, path.stem, path)
    if templates and ref in TEMPLATES and ref not in P.names(folder):
        return TEMPLATES[ref].profile()
    return P.read(folder, ref)


def normalised(options: dict[str, Any]) -> dict[str, Any]:
    """Option values as the configuration sees them (``"2h"`` → 7200.0; references kept as written)."""
    from gswarm.config import Settings

    model = Settings.model_validate(P.stand_ins(options)).model_dump(mode="json")
    raw = P.SECRET_OPTIONS | {"extra_env", "notify_urls", "notify_channels"}  # may hold references: shown as written
    return {k: (v if k in raw else model[k]) for k, v in options.items()}


def generation_problems(profile: P.Profile, generation: str) -> list[str]:
    """Why ``profile`` does not fit ``generation``: options meaningless there (as ``gswarm plan`` reports,
    :func:`gswarm.rlswarm.options.inapplicable`), a generation it does not claim, and a ``model_name`` outside
    the generation's own pool (``supervisor/_policy_oom.MODEL_POOLS``, generations.md §7.4/§9.4). ``[]`` = fits."""
    from gswarm.config import Settings
    from gswarm.rlswarm.options import inapplicable
    from gswarm.supervisor._policy_oom import MODEL_POOLS

    settings = Settings.model_validate(P.stand_ins(profile.options))
    found = [f"{m} (profile {profile.name})" for m in inapplicable(settings, generation, profile.options.keys())]
    if profile.generations and generation not in profile.generations:
        found.append(f"profile {profile.name} is meant for {', '.join(profile.generations)}, not {generation}")
    model, pool = profile.options.get("model_name"), MODEL_POOLS.get(generation)
    if model and pool and model not in pool:
        found.append(f"option model_name (profile {profile.name}): {model!r} is not a model {generation} picks itself "
                     f"({', '.join(pool)}); fine only if you know it trains there")
    return found


def list_cmd(state_dir: Optional[Path] = StateDir, json_out: bool = JsonOut) -> None:
    """Stored profiles (* = chosen with `profile use`) and the built-in templates."""
    folder = _folder(state_dir)
    current = P.active(folder)
    rows = []
    for name in P.names(folder):
        try:
            prof = P.read(folder, name)
            rows.append({"name": name, "kind": "profile", "active": name == current, "description": prof.description,
                         "generations": list(prof.generations), "error": None})
        except ConfigError as exc:
            rows.append({"name": name, "kind": "profile", "active": name == current, "description": "",
                         "generations": [], "error": str(exc)})
    rows += [{"name": t.name, "kind": "template", "active": False, "description": t.title,
              "generations": list(t.generations), "error": None} for t in ALL_TEMPLATES]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for col in ("name", "kind", "for", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(("* " if r["active"] else "  ") + r["name"], r["kind"], ",".join(r["generations"]) or "any",
                      escape(r["error"] or r["description"]))
    out.print(table)


def show_cmd(name: str = typer.Argument(..., help="Profile, template or .toml file."),
             state_dir: Optional[Path] = StateDir, json_out: bool = JsonOut) -> None:
    """Print a profile (TOML) or a template with the reason for each option it sets."""
    prof = _get(name, _folder(state_dir))
    template = TEMPLATES.get(name) if prof.path is None else None
    if json_out:
        typer.echo(json.dumps({"name": prof.name, "description": prof.description, "generations": list(prof.generations),
                               "template": prof.template, "options": prof.options,
                               "why": template.why if template else None}, indent=2, default=str))
        return
    text = P.dump(prof)
    if template:
        text += "".join(f"# {k}: {v}\n" for k, v in template.why.items())
    typer.echo(text, nl=False)


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is read as a TOML value (``true``, ``5``, ``["a"]``) or else kept as text."""
    from gswarm.config.settings import tomllib

    found: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option --set: {item!r} is not KEY=VALUE; e.g. --set stall_timeout=2h")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except Exception:
            value = raw
        found[key.strip().replace("-", "_")] = value
    return found


def save_cmd(name: str = typer.Argument(..., help="Name of the profile to write."),
             template: Optional[str] = typer.Option(None, "--template", "-t", help="Start from this template or profile."),
             set_: List[str] = typer.Option([], "--set", "-s", help="KEY=VALUE (repeatable), e.g. stall_timeout=2h."),
             unset: List[str] = typer.Option([], "--unset", help="Option to drop (repeatable)."),
             description: Optional[str] = typer.Option(None, "--description", "-d", help="One line about the profile."),
             force: bool = typer.Option(False, "--force", "-f", help="Replace an existing profile of that name."),
             from_current: bool = typer.Option(False, "--from-current", help="Also take the options set now in the "
                                               "config file, the API override and GSWARM_* (secrets as env: references)."),
             config_file: Optional[Path] = ConfigFile, state_dir: Optional[Path] = StateDir) -> None:
    """Write a profile from a template/profile, the current settings and --set values (validated; secrets only as
    env:/file: references). Layers, lowest first: --template, --from-current, --set, then --unset."""
    folder = _folder(state_dir, writable=True)
    P.check_name(name)
    if P.profile_path(folder, name).exists() and not force and template != name:
        raise ConfigError(f"profile {name} exists; pass --force to replace it, or --template {name} --set … to change it")
    if template and not (template.endswith(".toml") or "/" in template or template in TEMPLATES
                         or P.profile_path(folder, template).exists()):
        raise ConfigError(f"option --template: {template!r} is neither a built-in template nor a stored profile; "
                          f"templates: {', '.join(TEMPLATES)}; stored profiles: {', '.join(P.names(folder)) or 'none'} "
                          "(`gswarm profile list`)")
    base = _get(template, folder) if template else P.Profile(name)
    current = _current_options(state_dir, config_file) if from_current else {}
    options = {k: v for k, v in {**base.options, **current, **_parse_set(set_)}.items() if k not in unset}
    prof = P.Profile(name, options, description if description is not None else base.description, base.generations,
                     base.template or (template if template in TEMPLATES else None))
    path = P.write(folder, prof)
    typer.echo(f"saved profile {name} ({len(options)} options) to {path}; use it with `gswarm run --profile {name}` "
               f"or make it the default with `gswarm profile use {name}`")


def _current_options(state_dir: Optional[Path], config_file: Optional[Path]) -> dict[str, Any]:
    """Options the file, the API override or GSWARM_* set now (not defaults, not a profile, not locations).

    A secret set through ``GSWARM_X`` becomes the reference ``env:GSWARM_X``; one written in a file is left out
    (with a note on stderr: a profile never holds a secret)."""
    from gswarm.config import load_settings
    from gswarm.config.settings import option_sources

    settings = load_settings({"state_dir": state_dir, "config_file": config_file})
    values = settings.model_dump(mode="json")
    found: dict[str, Any] = {}
    for key, src in option_sources(settings).items():
        if src == "default" or src.startswith("profile ") or key in P.LOCATION_FIELDS or src == "gswarm profile use":
            continue
        if key in P.SECRET_OPTIONS:
            if src.startswith("GSWARM_"):
                found[key] = f"env:{src}"
            else:
                typer.echo(f"note: {key} (from {src}) is a secret and was not saved; add it as a reference, e.g. "
                           f"--set {key}=env:GSWARM_{key.upper()}", err=True)
            continue
        found[key] = values[key]
    return found


def use_cmd(name: Optional[str] = typer.Argument(None, help="Profile to use when none is given."),
            none: bool = typer.Option(False, "--none", help="Use no profile by default."),
            state_dir: Optional[Path] = StateDir) -> None:
    """Choose the profile applied when neither --profile nor GSWARM_PROFILE is given."""
    if (name is None) == (not none):
        raise ConfigError("give a profile name or --none (not both)")
    folder = _folder(state_dir, writable=True)
    P.set_active(folder, name)
    typer.echo(f"default profile: {name}" if name else "no default profile")


def rm_cmd(name: str, state_dir: Optional[Path] = StateDir) -> None:
    """Delete a stored profile (and stop using it by default)."""
    folder = _folder(state_dir)
    path = P.profile_path(folder, name)
    if not path.exists() and name in TEMPLATES:
        raise ConfigError(f"{name} is a built-in template, not a stored profile: it cannot be removed "
                          f"(stored profiles: {', '.join(P.names(folder)) or 'none'})")
    if not path.exists():
        raise ConfigError(f"profile {name} does not exist in {P.profiles_dir(folder)} (stored: {', '.join(P.names(folder)) or 'none'})")
    path.unlink()
    if P.active(folder) == name:
        P.set_active(folder, None)
    typer.echo(f"removed profile {name}")


def export_cmd(name: str, output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
               state_dir: Optional[Path] = StateDir) -> None:
    """Print or write a profile for another machine (never holds a secret: only env:/file: references)."""
    prof = P.read(_folder(state_dir), name)
    P.check_options(prof.options, f"profile {name}")  # a literal secret is refused, never exported
    text = P.dump(prof)
    if output is None:
        typer.echo(text, nl=False)
        return
    from gswarm.cli._common import check_output_file
    from gswarm.paths import atomic_write

    atomic_write(check_output_file(output, "--output", f"{name}.toml"), text, mode=0o600 if prof.has_reference else 0o644)
    typer.echo(f"exported profile {name} to {output}")


def import_cmd(file: Path = typer.Argument(..., help="A profile file (TOML)."),
               name: Optional[str] = typer.Option(None, "--name", help="Store it under this name (default: file name)."),
               force: bool = typer.Option(False, "--force", "-f", help="Replace an existing profile of that name."),
               state_dir: Optional[Path] = StateDir) -> None:
    """Validate a profile file and store it."""
    folder = _folder(state_dir, writable=True)
    prof = _get(str(file) if str(file).endswith(".toml") or "/" in str(file) else f"./{file}", folder)
    prof.name = P.check_name(name or prof.name)
    if P.profile_path(folder, prof.name).exists() and not force:
        raise ConfigError(f"profile {prof.name} exists; pass --force to replace it or --name to store it under another name")
    path = P.write(folder, prof)
    typer.echo(f"imported profile {prof.name} to {path}")


def diff_cmd(left: str = typer.Argument(..., help="Profile or .toml file."),
             right: Optional[str] = typer.Argument(None, help="Profile or file (default: the effective configuration)."),
             state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
    """Options that differ between two profiles, or between a profile and the effective configuration."""
    folder = _folder(state_dir)
    a = _get(left, folder)
    lhs = normalised(a.options)
    if right is None:
        from gswarm.config import load_settings, redacted_dict

        eff = redacted_dict(load_settings({"state_dir": state_dir, "config_file": config_file}))
        rhs = {k: eff[k] for k in lhs}
        label = "effective"
    else:
        rhs, label = normalised(_get(right, folder).options), right
    rows = P.diff(lhs, rhs)
    if json_out:
        typer.echo(json.dumps([{"option": k, left: l, label: r} for k, l, r in rows], indent=2, default=str))
        return
    if not rows:
        typer.echo(f"no differences between {left} and {label}")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("option", left, label):
        table.add_column(col, overflow="fold")
    for k, l, r in rows:
        table.add_row(k, escape("-" if l is None else json.dumps(l, default=str)), escape("-" if r is None else json.dumps(r, default=str)))
    out.print(table)


def validate_cmd(name: str = typer.Argument(..., help="Profile, template or .toml file."),
                 generation: Optional[str] = typer.Option(None, "--generation", "-g", help="Check against E0-E6."),
                 rl_swarm_dir: Optional[Path] = RlSwarmDir, state_dir: Optional[Path] = StateDir) -> None:
    """Check values and fit: against --generation, the checkout's generation, or every one the profile claims (exit 1 when an option means nothing there)."""
    prof = _get(name, _folder(state_dir))
    gens = _generations(generation, rl_swarm_dir, prof)
    problems = [p for g in gens for p in generation_problems(prof, g)]
    for p in problems:
        typer.echo(f"warning: {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"profile {prof.name}: valid" + (f" for {', '.join(gens)}" if gens else " (no generation to check against)"))


def _generations(generation: Optional[str], rl_swarm_dir: Optional[Path], prof: P.Profile) -> list[str]:
    from gswarm.errors import CheckoutError
    from gswarm.rlswarm.generations import detect

    if generation:
        if generation not in {f"E{i}" for i in range(7)}:
            raise ConfigError(f"option --generation: {generation!r} is not one of E0 … E6")
        return [generation]
    try:
        found = detect(Path(rl_swarm_dir or ".").resolve()).generation
        if found != "unknown":
            return [found]
    except CheckoutError:
        if rl_swarm_dir is not None:
            raise
    return list(prof.generations)


def register(root: typer.Typer) -> None:
    """Add ``gswarm profile …`` to ``root`` (the sub-app is built here: no import-time app)."""
    sub = typer.Typer(help="Named sets of options (profiles) and built-in templates for common setups.",
                      no_args_is_help=True)
    for name, fn in (("list", list_cmd), ("show", show_cmd), ("save", save_cmd), ("use", use_cmd), ("diff", diff_cmd),
                     ("rm", rm_cmd), ("export", export_cmd), ("import", import_cmd), ("validate", validate_cmd)):
        sub.command(name)(fn)
    root.add_typer(sub, name="profile")
