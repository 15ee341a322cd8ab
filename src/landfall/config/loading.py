"""Loading `landfall.yaml`: the file, then environment `LANDFALL__SECTION__KEY`, then CLI overrides; and
validation errors turned into one line each naming where, the key, what was found and what is allowed.

The parsed file is kept in landfall's cache folder (`config_cache`), so that a command on an unchanged file
skips the YAML parser and its import (about a tenth of a command's start-up), and what checking its SQL found
(`landfall.sqlcheck.keep`), so that such a command imports neither sqlglot nor DuckDB to check it again."""

import functools
import os
from pathlib import Path
from typing import Any

from landfall import sqlcheck
from landfall.config import config_cache
from landfall.config.model import Context, Problems, close_match, fields_of, models_in, parse, type_at
from landfall.config.settings import Settings
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
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _explain(exc: Problems, source: str, data: Any, from_env: dict[tuple[str, ...], str] | None = None) -> ConfigError:
    """One line per problem: where (the file, or the environment variable that set the value), the key, what
    was found and what is allowed. A misspelt key says which key was meant (`write.tabel`: unknown key; did you
    mean `table`?)."""
    lines = []
    for problem in exc.problems:
        loc = problem.loc
        where = _format_loc(loc, data)
        msg = problem.message
        if problem.kind == "unknown_key":
            msg = _unknown_key(loc, data)
        env = next((name for path, name in (from_env or {}).items() if tuple(map(str, loc[: len(path)])) == path), None)
        origin = f"environment `{env}`" if env else source
        lines.append(f"{origin}: `{where}`: {msg}" if loc else f"{origin}: {msg}")  # a rule of the whole file
    return ConfigError("\n".join(lines))


#: at most this many keys are listed for an unknown key of no other place
_KEYS_LISTED = 25
#: words for a key that landfall names otherwise, where that key is one of the place's (a workflow's files are
#: chosen by `match`, a prefix or a glob; a stream lands under its `prefix`)
_SAME_AS = {"prefix": "match", "glob": "match", "pattern": "match", "path": "match", "match": "prefix"}


def _unknown_key(loc: tuple[Any, ...], data: Any) -> str:
    """What to say of the unknown key at `loc`: the key meant (a close spelling among the keys of that place, or
    its name here: a workflow's `prefix` is its `match`), else where the key belongs (a rule's `expect` written on
    the workflow; a workflow's `table` is a key of its `write`: places below this one first), else the keys the
    place takes."""
    word, models = str(loc[-1]), models_in(type_at(Settings, loc[:-1], data))
    keys = [f.encode_name for f in fields_of(models[0])] if len(models) == 1 else sorted(_places())
    if meant := close_match(word, keys) or (_SAME_AS.get(word) if _SAME_AS.get(word) in keys else None):
        return f"unknown key; did you mean `{meant}`?"
    if homes := _places().get(word):
        here = "".join("[]" if isinstance(part, int) else f".{part}" for part in loc[:-1]).lstrip(".")
        below = [h for h in homes if h.startswith(f"{here}.")] or homes
        return f"unknown key here; `{word}` is a key of " + " or ".join(f"`{h}`" for h in below[:2])
    if len(models) == 1 and len(keys) <= _KEYS_LISTED:
        return "unknown key; the keys here are " + ", ".join(f"`{k}`" for k in keys)
    return "unknown key; check the spelling (see `landfall init` for a commented example)"


@functools.cache
def _places() -> dict[str, list[str]]:
    """Each key of landfall.yaml -> the places that take it (`expect` -> `workflows[].validate[]`), the places
    walked from the top, nearest first."""
    found: dict[str, list[str]] = {}
    todo: list[tuple[str, Any]] = [("", Settings)]
    seen: set[Any] = set()
    while todo:
        place, model = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for f in fields_of(model):
            found.setdefault(f.encode_name, []).append(place or "the top level")
            below = f"{place}.{f.encode_name}{_element(f.type)}".lstrip(".")
            todo += [(below, m) for m in models_in(f.type)]
    return found


def _element(tp: Any) -> str:
    """How a place names the models a field holds: `[]` for those of a list, `.<name>` for a mapping's."""
    import typing

    origins = {typing.get_origin(t) for t in (tp, *typing.get_args(tp))}
    return "[]" if list in origins else ".<name>" if dict in origins else ""


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
        import yaml

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


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader that refuses a key twice
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


@functools.cache
def _strict_loader() -> Any:
    """PyYAML's safe loader refusing a key twice in one mapping (`write:` pasted twice in a workflow), of which it
    would keep the last value without a word, as a YAML error naming both lines."""
    import yaml

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: the keys after it override the base's
                continue
            key = loader.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # (a list or a mapping as a key: the safe loader refuses it)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"`{key}` appears twice (first on line {seen[key]}); YAML would keep the last value without a "
                    "word: keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    class StrictLoader(yaml.SafeLoader):
        pass

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


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
        loaded = config_cache.load(file, text)
        if loaded is config_cache.MISSING:
            loaded = _parse_yaml(text, source)
            config_cache.store(file, text, loaded)
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
        settings = parse(Settings, data, Context(tables=_tables_written(data)))
    except Problems as exc:
        raise _explain(exc, source, data, from_env) from None
    sqlcheck.keep()  # its SQL passed: a command on the same config need not check it again
    settings.source = source
    settings.base_dir = str(base_dir)
    try:
        settings.check_engines()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return settings
