"""How a landed file is read (`read:`) and reshaped (`transform:` steps, each a one-key mapping in the YAML
list), and the row expressions steps and rules are checked with."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from landfall.config.common import FileFormat, Model, known_types
from landfall.sqlcheck import check_expression, check_query, tables_of


def row_expression(value: str | None, where: str = "") -> str | None:
    """An expression over one row (see `landfall.sqlcheck`)."""
    if value is not None:
        try:
            check_expression(value)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    return value


class ReadOptions(Model):
    """How a landed file is read. Everything left unset is detected."""

    format: FileFormat | None = None
    delimiter: str | None = None
    quote: str | None = None
    escape: str | None = None
    header: bool | None = None
    encoding: str | None = None
    null_values: list[str] | None = None
    types: dict[str, str] = Field(default_factory=dict)
    date_format: str | None = None
    timestamp_format: str | None = None
    all_strings: bool = False
    records: Literal["auto", "true"] = "auto"  # JSON: `true` fails files that are not objects; `auto` loads
    # scalars and arrays of non-objects as one `value` column of JSON text
    skip_rows: int = 0
    # `auto`: told by the file's first bytes (then its name); gzip, zstd, bz2, xz, or a zip of one file
    compression: Literal["auto", "none", "gzip", "zstd", "bz2", "xz", "zip"] = "auto"
    # CSV and JSON Lines: `quarantine` sets rows that cannot be parsed aside (raw text, line, reason) and loads
    # the rest; `fail` fails the file, naming the line
    bad_rows: Literal["fail", "quarantine"] = "fail"

    _types = field_validator("types")(lambda cls, value: known_types(value))

    @field_validator("records", mode="before")
    @classmethod
    def _records_bool(cls, value: Any) -> Any:
        """`records: true` (a YAML boolean, as the README writes it) means `"true"`; `false` means `auto`."""
        if value is True:
            return "true"
        return "auto" if value is False else value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding `{value}`; use a Python codec name such as `utf-8`, "
                "`latin-1`, `cp1252`, `utf-16`, `shift_jis`"
            ) from None
        return value


# --- transform steps: each is a one-key mapping in the YAML list -------------------------------------------


class Rename(Model):
    kind: Literal["rename"] = "rename"
    rename: dict[str, str]


class Cast(Model):
    kind: Literal["cast"] = "cast"
    cast: dict[str, str]

    _types = field_validator("cast")(lambda cls, value: known_types(value))


class Compute(Model):
    kind: Literal["compute"] = "compute"
    compute: dict[str, str]

    @field_validator("compute")
    @classmethod
    def _row_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expr in value.items():
            row_expression(expr, f"`compute` `{name}`: ")
        return value


class Filter(Model):
    kind: Literal["filter"] = "filter"
    filter: str

    _row_expression = field_validator("filter")(lambda cls, value: row_expression(value, "`filter`: "))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a table name


class Sql(Model):
    kind: Literal["sql"] = "sql"
    sql: str

    @field_validator("sql")
    @classmethod
    def _reads_input(cls, value: str, info: ValidationInfo) -> str:
        # the tables it may join: those the file's workflows write (`load_settings` passes them); without a
        # file, any table name here, and `Settings` checks them once it has every workflow
        lake = (info.context or {}).get("tables")
        try:
            check_query(value, tables=lake if lake is not None else [t for t in tables_of(value) if _NAME.fullmatch(t)])
        except ValueError as exc:
            raise ValueError(f"`sql`: {exc}") from None
        if not re.search(r"\binput\b", value, re.IGNORECASE):
            raise ValueError("the query must read from `input` (the rows so far), e.g. `SELECT * FROM input`")
        return value


class Drop(Model):
    """`drop: [a, b]` takes columns out; a column the rows do not have fails the file, like `rename` and `cast`,
    unless `drop: {columns: [a, b], missing_ok: true}`."""

    kind: Literal["drop"] = "drop"
    drop: list[str]
    missing_ok: bool = False

    @model_validator(mode="before")
    @classmethod
    def _long_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("drop"), str):
            value = {**value, "drop": [value["drop"]]}
        if isinstance(value, dict) and isinstance(value.get("drop"), dict):
            spec = dict(value["drop"])
            extra = sorted(set(spec) - {"columns", "missing_ok"})
            if extra or "columns" not in spec:
                raise ValueError(
                    "`drop` takes a list of columns, or `{columns: [...], missing_ok: true}`"
                    + (f"; unknown key {', '.join(f'`{k}`' for k in extra)}" if extra else "")
                )
            columns = spec["columns"]
            value = {
                **value,
                "drop": [columns] if isinstance(columns, str) else columns,
                "missing_ok": spec.get("missing_ok", False),
            }
        return value


class NormalizeNames(Model):
    kind: Literal["normalize_names"] = "normalize_names"
    normalize_names: bool = True


class FlattenSpec(Model):
    separator: str = "_"
    max_depth: int = Field(4, ge=1)
    keep_json: list[str] = Field(default_factory=list)  # dotted paths kept as a JSON string


class Flatten(Model):
    kind: Literal["flatten"] = "flatten"
    flatten: FlattenSpec = Field(default_factory=FlattenSpec)

    @field_validator("flatten", mode="before")
    @classmethod
    def _defaults(cls, value: Any) -> Any:
        return {} if value in (None, True) else value


class Explode(Model):
    kind: Literal["explode"] = "explode"
    explode: str  # a list column: one row per element, parent fields repeated


class ChildTablesSpec(Model):
    """List columns written to tables of their own, one row per element, linked to the parent row by `key` (the
    parent's columns, copied into each child row) or, without a key, by a generated `_row_id` / `_parent_row_id`;
    `_pos` is the element's position in its list (from 0). `products.tags` names a list inside the elements of
    `products`: its rows link to their `products` row by `_parent_row_id` (and to the top row by the key, or
    `_root_row_id`)."""

    columns: dict[str, str | None]  # list column -> child table (None: `<table>__<column>`)
    key: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, (list, str)):  # `child_tables: [products]`
            value = {"columns": value}
        if isinstance(value, dict) and isinstance(value.get("columns"), (list, str)):
            cols = value["columns"]
            value = {**value, "columns": {c: None for c in ([cols] if isinstance(cols, str) else cols)}}
        if isinstance(value, dict) and isinstance(value.get("key"), str):
            value = {**value, "key": [value["key"]]}
        return value


class ChildTables(Model):
    kind: Literal["child_tables"] = "child_tables"
    child_tables: ChildTablesSpec


class DedupeSpec(Model):
    keys: list[str]
    order_by: str | None = None

    _row_expression = field_validator("order_by")(lambda cls, value: row_expression(value, "`dedupe` `order_by`: "))


class Dedupe(Model):
    kind: Literal["dedupe"] = "dedupe"
    dedupe: DedupeSpec


Step = Annotated[
    Union[Rename, Cast, Compute, Filter, Sql, Drop, NormalizeNames, Dedupe, Flatten, Explode, ChildTables],
    Field(discriminator="kind"),
]
STEP_KINDS = (
    "rename",
    "cast",
    "compute",
    "filter",
    "sql",
    "drop",
    "normalize_names",
    "dedupe",
    "flatten",
    "explode",
    "child_tables",
)
# Steps that look at one row at a time (all but `sql`): files can share one engine query without changing the
# result.
ROW_WISE = set(STEP_KINDS) - {"sql"}


def steps_before(value: Any) -> Any:
    """Turn YAML's `- rename: {...}` items into tagged step models, with clear errors."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("`transform` must be a list of steps, e.g. `- rename: {a: b}`")
    steps = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(
                f"step {i}: expected a mapping with one key, one of " + ", ".join(f"`{k}`" for k in STEP_KINDS)
            )
        ((kind, arg),) = item.items()
        if kind not in STEP_KINDS:
            raise ValueError(
                f"step {i}: unknown step `{kind}`; expected one of " + ", ".join(f"`{k}`" for k in STEP_KINDS)
            )
        steps.append({"kind": kind, kind: arg})
    return steps
