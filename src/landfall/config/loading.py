"""Loading `landfall.yaml`: the file, then environment `LANDFALL__SECTION__KEY`, then CLI overrides; and
validation errors turned into one line each naming where, the key, what was found and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from landfall.config.settings import Settings
from landfall.config.steps import STEP_KINDS
from landfall.errors import ConfigError

CONFIG_FILE = "landfall.yaml"


def _format_loc(loc: tuple[Any, ...], data: Any) -> str:
    """`('workflows', 0, 'write', 'format')` -> `workflows[0] (sales).write.format`."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "name" in node[item]:
                label += f" ({node[item]['name']})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            if item in STEP_KINDS and parts and parts[-1].startswith("[") and isinstance(node, dict):
                continue  # the discriminator tag repeats the step kind; leave it out
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _explain(
    exc: ValidationError, source: str, data: Any, from_env: dict[tuple[str, ...], str] | None = None
) -> ConfigError:
    """One line per error: where (the file, or the environment variable that set the value), the key, what was
    found and what is allowed. A misspelt key says which key was meant, instead of also reporting the key it
    meant as missing (`write.tabel`: unknown key; did you mean `table`?)."""
    errors = exc.errors()
    unknown = {(tuple(e["loc"][:-1]), str(e["loc"][-1])) for e in errors if e["type"] == "extra_forbidden"}
    lines = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "missing" and any(
            parent == loc[:-1] and _close(key, [str(loc[-1])]) for parent, key in unknown
        ):
            continue  # `tabel` was meant as `table`: the unknown key's line says so
        where = _format_loc(loc, data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error":
            msg = f"got `{err.get('input')}`; " + msg.replace("Input should be", "expected").replace("'", "`")
        elif err["type"] == "extra_forbidden":
            meant = _close(str(loc[-1]), _keys_at(loc[:-1]))
            msg = "unknown key" + (
                f"; did you mean `{meant}`?"
                if meant
                else "; check the spelling (see `landfall init` for a commented example)"
            )
        env = next((name for path, name in (from_env or {}).items() if tuple(map(str, loc[: len(path)])) == path), None)
        origin = f"environment `{env}`" if env else source
        lines.append(f"{origin}: `{where}`: {msg}")
    return ConfigError("\n".join(lines))


def _close(word: str, choices: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return found[0] if found else None


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys a config mapping at `loc` may hold (every field of the models it may be), for a did-you-mean."""
    keys: set[str] = set()

    def walk(model: type[BaseModel], seen: set[type]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, f in model.model_fields.items():
            keys.add(f.alias or name)
            for sub in _models_in(f.annotation):
                walk(sub, seen)

    if not loc:
        return sorted(Settings.model_fields)
    walk(Settings, set())
    return sorted(keys)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _env_overrides(
    data: dict[str, Any], environ: dict[str, str], seen: dict[tuple[str, ...], str] | None = None
) -> dict[str, Any]:
    """Apply `LANDFALL__SECTION__KEY=value` (values parsed as YAML scalars); `seen` records which variable set
    which key, so that an error in one names the variable, not landfall.yaml."""
    for name, raw in environ.items():
        if not name.startswith("LANDFALL__"):
            continue
        path = [p.lower() for p in name[len("LANDFALL__") :].split("__") if p]
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment `{name}`: `{key}` is not a section")
        node[path[-1]] = yaml.safe_load(raw)
        if seen is not None:
            seen[tuple(path)] = name
    return data


def _tables_written(data: dict[str, Any]) -> list[str]:
    """The tables the file's workflows write (`write.table`), read before validation: what `sql` steps may join."""
    found = []
    for wf in data.get("workflows") or []:
        write = wf.get("write") if isinstance(wf, dict) else None
        if isinstance(write, dict) and isinstance(write.get("table"), str):
            found.append(write["table"])
    return found


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Read `landfall.yaml` (or defaults when there is none), then env, then overrides."""
    environ = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = {}
    source = "<defaults>"
    base_dir = Path.cwd()
    if path is None and Path(CONFIG_FILE).exists():
        path = CONFIG_FILE
    if path is not None:
        file = Path(path)
        if file.is_dir():
            file = file / CONFIG_FILE
        source = str(file)
        base_dir = file.resolve().parent
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such file; create one with `landfall init`") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            ctx = getattr(exc, "context_mark", None)
            started = (
                f" (in the {exc.context.split()[-1]} that starts at line {ctx.line + 1})"
                if ctx and getattr(exc, "context", None)
                else ""
            )
            raise ConfigError(f"{source}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}{started}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping at the top (keys such as `lake`, `workflows`)")
        data = loaded
    from_env: dict[tuple[str, ...], str] = {}
    data = _env_overrides(data, environ, from_env)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
            from_env.pop((key,), None)  # a CLI flag wins over the environment
    try:
        settings = Settings.model_validate(data, context={"tables": _tables_written(data)})
    except ValidationError as exc:
        raise _explain(exc, source, data, from_env) from None
    settings.source = source
    settings.base_dir = str(base_dir)
    try:
        settings.check_engines()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return settings
