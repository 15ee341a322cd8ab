"""Every option a user can set in landfall.yaml is documented, with an example.

The options are found by walking the config models from the top one (`landfall.config.Settings`) through their
fields' annotations, whatever modules they live in: every field name (or its alias: `validate`, `schema`),
every transform step kind and validate rule kind (fields of their models), every `sources:` name and its
options, and every value a `Literal` field allows (`evolution: discard_row`, `compression: zstd`).

The docs are README.md and the Markdown files it links. Their examples are the ```yaml blocks and the inline
code spans that read as YAML mappings (`` `read: {bad_rows: quarantine}` ``), parsed with PyYAML. A field is
documented when an example holds its key under its parent's key (`read` ... `escape`; a top-level key at the top
of an example; a key at the top of an indented fragment, `    validate:`, under any parent), so `format:` under
`write:` does not stand in for `format:` under `read:`. A value of a
`Literal` field is documented when an example sets the field to it, or a yaml line of the field lists it in its
comment (`format: delta  # parquet | delta`), or it appears as inline code (`` `discard_row` ``).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from landfall.config import Settings, load_settings
from landfall.config.model import Model, choices_of, fields_of, models_in
from landfall.errors import ConfigError
from landfall.types import USER_TYPES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Fields of the config models that are not keys of landfall.yaml: the YAML form is parsed into them by a
# validator of the model that holds them. Keyed by class name; a name here that no longer exists fails the test.
NOT_KEYS = {
    "PartitionColumn": {
        "name": "`partition_by: [country, month(ts)]` or `{name: month(col)}` is parsed into it",
        "column": "parsed from the partition entry",
        "function": "parsed from the partition entry",
    },
    "SourceConfig": {
        "name": "a source is `listing` or `{sqs: {...}}`: its name is the key (see `named_options`)",
        "options": "the mapping under the source's name",
    },
}


@dataclass(frozen=True)
class Option:
    path: tuple[str, ...]  # YAML keys from the top: ("workflows", "read", "escape"); list items leave no key
    model: str  # the class that declares it, for messages
    choices: tuple[str, ...]  # the values a Literal field allows (empty for other fields)

    def __str__(self) -> str:
        return ".".join(self.path)


def _literals_in(annotation: Any) -> list[str]:
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in choices_of(annotation)]


def options(top: type[Model] = Settings) -> list[Option]:
    """Every option of the config a user can set, with its path of keys, walking fields and annotations."""
    found: list[Option] = []
    skipped: set[tuple[str, str]] = set()

    def walk(model: type[Model], path: tuple[str, ...], seen: frozenset[type]) -> None:
        if model in seen:
            return
        seen = seen | {model}
        for field in fields_of(model):
            choices = _literals_in(field.type)
            if field.name in NOT_KEYS.get(model.__name__, {}):
                skipped.add((model.__name__, field.name))
                continue
            key = field.encode_name
            found.append(Option((*path, key), model.__name__, tuple(choices)))
            for sub in models_in(field.type):
                walk(sub, (*path, key), seen)
        # a model whose YAML form is `{name: options}` (`sources: [listing, {sqs: {...}}]`) names them
        for name, sub in getattr(model, "named_options", {}).items():
            found.append(Option((*path, name), model.__name__, ()))
            walk(sub, (*path, name), seen)

    walk(top, (), frozenset())
    stale = {(c, f) for c, fields in NOT_KEYS.items() for f in fields} - skipped
    assert not stale, f"NOT_KEYS names fields that no config model has any more: {sorted(stale)}"
    return found


# --- the docs --------------------------------------------------------------------------------------------------


def doc_files(start: Path = README) -> list[Path]:
    """README.md and every local Markdown file it links, and so on."""
    todo, done = [start], []
    while todo:
        path = todo.pop()
        if path in done or not path.is_file():
            continue
        done.append(path)
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                todo.append((path.parent / target).resolve())
    return done


_FENCE = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass
class Examples:
    keys: set[tuple[str, ...]]  # every path of keys an example holds (a scalar in a list counts as a key)
    values: set[tuple[tuple[str, ...], str]]  # (path, scalar) for every scalar an example sets
    comments: list[tuple[str, str]]  # (line before its comment, comment) of every yaml line
    inline: set[str]  # every inline code span
    broken: list[str]  # yaml blocks that do not parse


def _walk_yaml(data: Any, path: tuple[str, ...], ex: Examples) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            key = "on" if key is True else str(key)  # YAML 1.1 reads a bare `on:` as true
            ex.keys.add((*path, key))
            _walk_yaml(value, (*path, key), ex)
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (str, int, float, bool)) and path:
                ex.keys.add((*path, str(item)))  # `sources: [listing]`, `on: [dead_letter]`
            _walk_yaml(item, path, ex)
    elif data is not None:
        ex.values.add((path, str(data).lower() if isinstance(data, bool) else str(data)))


def examples(files: list[Path]) -> Examples:
    ex = Examples(set(), set(), [], set(), [])
    for path in files:
        text = path.read_text()
        for match in _FENCE.finditer(text):
            block = textwrap.dedent(match.group(2))
            # a block indented past its fence is a fragment of a bigger file (`    read: ...` inside a workflow):
            # its top keys sit under some parent, written `...`
            first = next((line for line in match.group(2).splitlines() if line.strip()), "")
            nested = len(first) - len(first.lstrip()) > len(match.group(1))
            try:
                _walk_yaml(yaml.safe_load(block), ("...",) if nested else (), ex)
            except yaml.YAMLError as exc:
                ex.broken.append(f"{path.name}: {block[:60]!r}...: {str(exc).splitlines()[0]}")
            for line in block.splitlines():
                code, _, comment = line.partition(" #")
                ex.comments.append((code, comment))
        for span in _INLINE.findall(_FENCE.sub("", text)):
            ex.inline.add(span)
            if ":" in span:
                try:
                    _walk_yaml(yaml.safe_load(span), (), ex)
                except yaml.YAMLError:
                    pass  # prose in backticks (`a: b` that is not YAML), not an example
    return ex


def documented(option: Option, ex: Examples) -> bool:
    """An example holds the key under its parent's key (a top-level key at the top of an example)."""
    *parents, key = option.path
    if not parents:
        return (key,) in ex.keys
    parent = parents[-1]
    return any(p[-1] == key and (parent in p[:-1] or p == ("...", key)) for p in ex.keys)


def documented_value(option: Option, value: str, ex: Examples) -> bool:
    key = option.path[-1]
    if any(p and p[-1] == key and v == value for p, v in ex.values):
        return True
    if any(p[-2:] == (key, value) for p in ex.keys if len(p) >= 2):  # `on: [dead_letter]`
        return True
    word = re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")
    if any(re.search(rf"(?<![\w-]){re.escape(key)}:", code) and word.search(c) for code, c in ex.comments):
        return True
    return value in ex.inline


def undocumented(top: type[Model] = Settings, files: list[Path] | None = None) -> list[str]:
    ex = examples(doc_files() if files is None else files)
    missing = []
    for option in options(top):
        if not documented(option, ex):
            missing.append(f"`{option}` ({option.model}): no example sets `{option.path[-1]}:`")
        for value in option.choices:
            if not documented_value(option, value, ex):
                missing.append(f"`{option}` ({option.model}): value `{value}` is nowhere in the docs")
    return missing


# --- the tests -------------------------------------------------------------------------------------------------


def test_every_config_option_is_documented_with_an_example():
    missing = undocumented()
    assert not missing, "options of landfall.yaml that README.md (or a doc it links) has no example of:\n" + "\n".join(
        missing
    )


def test_an_undocumented_field_fails_the_check():
    """The check is real: a field added to a nested model (and a value added to a Literal) is reported."""

    def field(model: type[Model], name: str) -> Any:
        return next(f.type for f in fields_of(model) if f.name == name)

    def derive(name: str, base: type[Model], *fields: tuple[Any, ...]) -> type[Model]:
        return msgspec.defstruct(name, fields, bases=(base,), kw_only=True)

    (wf_model,) = models_in(field(Settings, "workflows"))
    read = derive("ReadOptions", models_in(field(wf_model, "read"))[0], ("frobnicate_rows", int, 0))
    evolution = Literal["evolve", "rescue", "freeze", "discard_row", "melt"]
    schema = derive("SchemaPolicy", models_in(field(wf_model, "schema_"))[0], ("evolution", evolution, "evolve"))
    wf = derive(
        "Workflow",
        wf_model,
        ("read", read, msgspec.field(default_factory=read)),
        ("schema_", schema, msgspec.field(default_factory=schema, name="schema")),
    )
    top = derive("Settings", Settings, ("workflows", list[wf], msgspec.field(default_factory=list)))
    new = set(undocumented(top)) - set(undocumented())
    assert new == {
        "`workflows.read.frobnicate_rows` (ReadOptions): no example sets `frobnicate_rows:`",
        "`workflows.schema.evolution` (SchemaPolicy): value `melt` is nowhere in the docs",
    }


def test_the_walk_finds_the_shapes_users_write():
    paths = {str(o) for o in options()}
    expected = {
        "workflows.transform.flatten.separator",  # a step kind and its options
        "workflows.transform.explode",
        "workflows.validate.accepted_values.values",  # a rule kind (alias `validate`)
        "workflows.schema.evolution",  # alias `schema`
        "sources.sqs.queue_url",  # a source by name
        "sources.listing.interval_seconds",
        "alerts.on.no_file_for",
        "spark.conf",
        "storage.commit_lock",
        "streams.buffer.limit_mb",
        "serve.token_env",
    }
    assert expected <= paths, sorted(expected - paths)


def test_every_yaml_example_parses():
    ex = examples(doc_files())
    assert not ex.broken, "\n".join(ex.broken)


def test_every_whole_config_example_loads(tmp_path):
    """A yaml example whose top keys are all landfall.yaml's is a whole file: it must load as one."""
    top = {f.encode_name for f in fields_of(Settings)}
    loaded = 0
    for path in doc_files():
        text = path.read_text()
        for i, match in enumerate(_FENCE.finditer(text)):
            block = textwrap.dedent(match.group(2))
            data = yaml.safe_load(block)
            first = next((line for line in match.group(2).splitlines() if line.strip()), "")
            if len(first) - len(first.lstrip()) > len(match.group(1)):
                continue  # a fragment
            if not isinstance(data, dict) or not {str(k) for k in data} <= top:
                continue  # another program's YAML (Prometheus)
            config = tmp_path / f"{i}" / "landfall.yaml"
            config.parent.mkdir()
            config.write_text(block)
            try:
                load_settings(config, environ={})
            except ConfigError as exc:
                raise AssertionError(f"{path.name}: the example starting `{block[:70]}` does not load: {exc}") from None
            loaded += 1
    assert loaded >= 10


def test_every_type_name_cast_accepts_is_listed():
    """The README's list of types in `cast:` names every type name landfall accepts."""
    text = README.read_text()
    (types_para,) = re.findall(r"\*\*Types\*\* in `cast:`.*?(?=\n- \*\*|\n\n)", text, re.DOTALL)
    listed = set(re.findall(r"`([^`]+)`", types_para))
    missing = sorted(name for name in USER_TYPES if name not in listed)
    assert not missing, f"type names `cast:` accepts that the README's Types paragraph does not list: {missing}"


def test_two_set_up_commands_and_ci_runs_the_second():
    """The README opens with two commands: install and run the demo; install and run the tests, which is the
    command `.ci/run` runs on a fresh machine."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    demo, tests = commands
    assert demo.startswith("pip install ") and demo.endswith("&& landfall demo"), demo
    assert 'pip install ".[test]"' in tests and tests.endswith("&& python -m pytest"), tests
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci, f"`.ci/run` does not run the README's test command `{tests}`"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(text: str) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.DOTALL), re.M)}


def test_links_inside_the_docs_lead_somewhere():
    broken = []
    for path in doc_files():
        text = path.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.DOTALL)):
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if "://" in target:
                continue
            if not dest.exists():
                broken.append(f"{path.name}: link to `{target}`: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _headings(dest.read_text()):
                broken.append(f"{path.name}: link to `{target}`: no heading `#{anchor}`")
    assert not broken, "\n".join(broken)


def test_no_section_is_repeated():
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", README.read_text(), flags=re.DOTALL), re.M)
    assert len(headings) == len(set(headings)), sorted({h for h in headings if headings.count(h) > 1})


def test_changelog_has_one_heading_per_day_newest_first():
    days = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days), days
    assert days == sorted(set(days), reverse=True), f"CHANGELOG day headings repeat or are out of order: {days}"
