"""How a landed file is read (`read:`) and reshaped (`transform:` steps, each a one-key mapping in the YAML
list), and the row expressions steps and rules are checked with."""

import re
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from landfall.config.common import FileFormat, known_types, one_or_many
from landfall.config.model import Context, Invalid, Model, at, close_match
from landfall.sqlcheck import check_expression, check_query, tables_of


def row_expression(value: str | None, where: str = "") -> str | None:
    """An expression over one row (see `landfall.sqlcheck`)."""
    if value is not None:
        try:
            check_expression(value)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    return value


class ReadOptions(Model, kw_only=True):
    """How a landed file is read. Everything left unset is detected."""

    format: FileFormat | None = None
    delimiter: str | None = None
    quote: str | None = None
    escape: str | None = None
    header: bool | None = None
    encoding: str | None = None
    null_values: list[str] | None = None
    types: dict[str, str] = {}
    date_format: str | None = None
    timestamp_format: str | None = None
    decimal_separator: Literal[".", ","] = "."  # CSV: `,` reads `2,5` as 2.5
    max_line_size: int | None = None  # CSV, DuckDB engine: the longest line read, in bytes (default 2,000,000)
    all_strings: bool = False
    records: Literal["auto", "true"] = "auto"  # JSON: `true` fails files that are not objects; `auto` loads
    # scalars and arrays of non-objects as one `value` column of JSON text
    skip_rows: int = 0
    # `auto`: told by the file's first bytes (then its name); gzip, zstd, bz2, xz, or a zip of one file
    compression: Literal["auto", "none", "gzip", "zstd", "bz2", "xz", "zip"] = "auto"
    # CSV and JSON Lines: `quarantine` sets rows that cannot be parsed aside (raw text, line, reason) and loads
    # the rest; `fail` fails the file, naming the line
    bad_rows: Literal["fail", "quarantine"] = "fail"

    # `records: true` (a YAML boolean, as the README writes it) means `"true"`; `false` means `auto`
    _short_forms = {"records": lambda v: ("true" if v else "auto") if isinstance(v, bool) else v}

    def _check(self, context: Context) -> None:
        with at("types"):
            known_types(self.types)
        if self.max_line_size is not None and self.max_line_size < 1:
            raise Invalid(f"expected a number of bytes, 1 or more; got `{self.max_line_size}`", "max_line_size")
        if self.encoding is not None:
            import codecs

            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise Invalid(
                    f"unknown encoding `{self.encoding}`; use a Python codec name such as `utf-8`, "
                    "`latin-1`, `cp1252`, `utf-16`, `shift_jis`",
                    "encoding",
                ) from None


# --- transform steps: each is a one-key mapping in the YAML list -------------------------------------------


class StepModel(Model, tag_field="kind", kw_only=True):
    """A transform step; its YAML key (`rename:`) is its kind."""

    @property
    def kind(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]

    def expressions(self) -> list[str]:
        """The SQL the step was written with (compute, filter, sql), for messages that point into it."""
        return []


class Rename(StepModel, tag="rename", kw_only=True):
    rename: dict[str, str]


class Cast(StepModel, tag="cast", kw_only=True):
    cast: dict[str, str]

    def _check(self, context: Context) -> None:
        with at("cast"):
            known_types(self.cast)


class Compute(StepModel, tag="compute", kw_only=True):
    compute: dict[str, str]

    def expressions(self) -> list[str]:
        return list(self.compute.values())

    def _check(self, context: Context) -> None:
        for name, expr in self.compute.items():
            row_expression(expr, f"`compute` `{name}`: ")


class Filter(StepModel, tag="filter", kw_only=True):
    filter: str

    def expressions(self) -> list[str]:
        return [self.filter]

    def _check(self, context: Context) -> None:
        row_expression(self.filter, "`filter`: ")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a table name


class Sql(StepModel, tag="sql", kw_only=True):
    sql: str

    def expressions(self) -> list[str]:
        return [self.sql]

    def _check(self, context: Context) -> None:
        # the tables it may join: those the file's workflows write (`load_settings` passes them); without a
        # file, any table name here, and `Settings` checks them once it has every workflow
        lake = context.tables
        value = self.sql
        try:
            check_query(value, tables=lake if lake is not None else [t for t in tables_of(value) if _NAME.fullmatch(t)])
        except ValueError as exc:
            raise ValueError(f"`sql`: {exc}") from None
        if not re.search(r"\binput\b", value, re.IGNORECASE):
            raise ValueError("`sql`: the query must read from `input` (the rows so far), e.g. `SELECT * FROM input`")


class Drop(StepModel, tag="drop", kw_only=True):
    """`drop: [a, b]` takes columns out; a column the rows do not have fails the file, like `rename` and `cast`,
    unless `drop: {columns: [a, b], missing_ok: true}`."""

    drop: list[str]
    missing_ok: bool = False

    @classmethod
    def _shape(cls, value: Any) -> Any:
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


class NormalizeNames(StepModel, tag="normalize_names", kw_only=True):
    normalize_names: bool = True


class FlattenSpec(Model, kw_only=True):
    separator: str = "_"
    max_depth: Annotated[int, Meta(ge=1)] = 4
    keep_json: list[str] = []  # dotted paths kept as a JSON string


class Flatten(StepModel, tag="flatten", kw_only=True):
    flatten: FlattenSpec = msgspec.field(default_factory=FlattenSpec)

    _short_forms = {"flatten": lambda v: {} if v is None or v is True else v}  # `- flatten:`, `- flatten: true`


class Explode(StepModel, tag="explode", kw_only=True):
    explode: str  # a list column: one row per element, parent fields repeated


class ChildTablesSpec(Model, kw_only=True):
    """List columns written to tables of their own, one row per element, linked to the parent row by `key` (the
    parent's columns, copied into each child row) or, without a key, by a generated `_row_id` / `_parent_row_id`;
    `_pos` is the element's position in its list (from 0). `products.tags` names a list inside the elements of
    `products`: its rows link to their `products` row by `_parent_row_id` (and to the top row by the key, or
    `_root_row_id`)."""

    columns: dict[str, str | None]  # list column -> child table (None: `<table>__<column>`)
    key: list[str] = []

    _short_forms = {
        "columns": lambda v: {c: None for c in one_or_many(v)} if isinstance(v, list | str) else v,
        "key": one_or_many,
    }

    @classmethod
    def _shape(cls, value: Any) -> Any:
        return {"columns": value} if isinstance(value, list | str) else value  # `child_tables: [products]`


class ChildTables(StepModel, tag="child_tables", kw_only=True):
    child_tables: ChildTablesSpec


class DedupeSpec(Model, kw_only=True):
    keys: list[str]
    order_by: str | None = None

    def _check(self, context: Context) -> None:
        row_expression(self.order_by, "`dedupe` `order_by`: ")


class Dedupe(StepModel, tag="dedupe", kw_only=True):
    dedupe: DedupeSpec


Step = Union[Rename, Cast, Compute, Filter, Sql, Drop, NormalizeNames, Dedupe, Flatten, Explode, ChildTables]
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
            meant = close_match(str(kind), list(STEP_KINDS))
            kinds = ", ".join(f"`{k}`" for k in STEP_KINDS)
            hint = f"did you mean `{meant}`?" if meant else f"expected one of {kinds}"
            raise ValueError(f"step {i}: unknown step `{kind}`; {hint}")
        steps.append({"kind": kind, kind: arg})
    return steps
