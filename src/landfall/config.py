"""Typed settings: load and validate `landfall.yaml`.

Precedence, stated once: CLI flags > environment `LANDFALL__SECTION__KEY` > the file > defaults.
Every check that can be made before a run is made here, so a bad config fails at load with the file, the key
and what is allowed, never in the middle of a run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from landfall.errors import ConfigError
from landfall.sources.settings import SourceConfig
from landfall.sqlcheck import check_expression, check_query, tables_of

CONFIG_FILE = "landfall.yaml"

FileFormat = Literal["csv", "jsonl", "json", "parquet"]
TableFormat = Literal["parquet", "delta"]


def _expression(value: str | None, where: str = "") -> str | None:
    """An expression over one row (see `landfall.sqlcheck`)."""
    if value is not None:
        try:
            check_expression(value)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    return value


def known_engine(value: str) -> str:
    """An engine name from `landfall.registry` (or `module:Class`), or `auto` (Spark above `spark_above`)."""
    from landfall.registry import names

    if value != "auto" and value not in names("engine") and ":" not in value:
        allowed = [*names("engine"), "auto"]
        raise ValueError(f"unknown engine `{value}`; expected one of " + ", ".join(f"`{n}`" for n in allowed))
    return value


def _known_types(value: dict[str, str]) -> dict[str, str]:
    """Every value is a type name landfall knows (see `landfall.types.user_type`)."""
    from landfall.types import user_type

    for type_name in value.values():
        user_type(type_name)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReadOptions(_Model):
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

    _types = field_validator("types")(lambda cls, value: _known_types(value))

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


class Rename(_Model):
    kind: Literal["rename"] = "rename"
    rename: dict[str, str]


class Cast(_Model):
    kind: Literal["cast"] = "cast"
    cast: dict[str, str]

    _types = field_validator("cast")(lambda cls, value: _known_types(value))


class Compute(_Model):
    kind: Literal["compute"] = "compute"
    compute: dict[str, str]

    @field_validator("compute")
    @classmethod
    def _row_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expr in value.items():
            try:
                check_expression(expr)
            except ValueError as exc:
                raise ValueError(f"`compute` `{name}`: {exc}") from None
        return value


class Filter(_Model):
    kind: Literal["filter"] = "filter"
    filter: str

    _row_expression = field_validator("filter")(lambda cls, value: _expression(value, "`filter`: "))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a table name


class Sql(_Model):
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


class Drop(_Model):
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


class NormalizeNames(_Model):
    kind: Literal["normalize_names"] = "normalize_names"
    normalize_names: bool = True


class FlattenSpec(_Model):
    separator: str = "_"
    max_depth: int = Field(4, ge=1)
    keep_json: list[str] = Field(default_factory=list)  # dotted paths kept as a JSON string


class Flatten(_Model):
    kind: Literal["flatten"] = "flatten"
    flatten: FlattenSpec = Field(default_factory=FlattenSpec)

    @field_validator("flatten", mode="before")
    @classmethod
    def _defaults(cls, value: Any) -> Any:
        return {} if value in (None, True) else value


class Explode(_Model):
    kind: Literal["explode"] = "explode"
    explode: str  # a list column: one row per element, parent fields repeated


class ChildTablesSpec(_Model):
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


class ChildTables(_Model):
    kind: Literal["child_tables"] = "child_tables"
    child_tables: ChildTablesSpec


class DedupeSpec(_Model):
    keys: list[str]
    order_by: str | None = None

    _row_expression = field_validator("order_by")(lambda cls, value: _expression(value, "`dedupe` `order_by`: "))


class Dedupe(_Model):
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
# Steps that look at one row at a time: files can share one engine query without changing the result.
ROW_WISE = {
    "rename",
    "cast",
    "compute",
    "filter",
    "drop",
    "normalize_names",
    "dedupe",
    "flatten",
    "explode",
    "child_tables",
}


class RetryPolicy(_Model):
    max_attempts: int = Field(3, ge=1)
    backoff_seconds: float = Field(1.0, ge=0)
    max_backoff_seconds: float = Field(300.0, ge=0)
    jitter: float = Field(0.2, ge=0, le=1)


_PARTITION_FUNCS = ("year", "month", "day", "hour")
_PARTITION_EXPR = re.compile(r"^\s*(year|month|day|hour)\s*\(\s*([^()]+?)\s*\)\s*$", re.IGNORECASE)


class PartitionColumn(_Model):
    """One Hive partition level: a column, or year/month/day/hour of a date or timestamp column."""

    name: str
    column: str
    function: Literal["year", "month", "day", "hour"] | None = None


def parse_partition(item: Any) -> PartitionColumn:
    if isinstance(item, PartitionColumn):
        return item
    if isinstance(item, str):
        m = _PARTITION_EXPR.match(item)
        if m:
            func, column = m.group(1).lower(), m.group(2).strip().strip('"')
            return PartitionColumn(name=func, column=column, function=func)  # type: ignore[arg-type]
        if "(" in item:
            raise ValueError(
                f"partition `{item}`: expected a column name or one of "
                + ", ".join(f"`{f}(column)`" for f in _PARTITION_FUNCS)
            )
        return PartitionColumn(name=item, column=item)
    if isinstance(item, dict) and len(item) == 1:
        ((name, expr),) = item.items()
        m = _PARTITION_EXPR.match(str(expr))
        if m:
            return PartitionColumn(name=name, column=m.group(2).strip().strip('"'), function=m.group(1).lower())  # type: ignore[arg-type]
        return PartitionColumn(name=name, column=str(expr))
    raise ValueError(f"partition entry `{item}`: expected `column`, `year(column)` or `{{name: year(column)}}`")


class Compaction(_Model):
    """Rewrite a partition's small files into few large ones once it has `min_files` files."""

    enabled: bool = True
    min_files: int = Field(16, ge=2)
    target_file_size: str = "128MB"


class WriteOptions(_Model):
    table: str | None = None  # a table; or `landing`: files into another prefix, for the next workflow (a hop)
    landing: str | None = None
    format: Literal["parquet", "delta", "jsonl"] = "parquet"  # tables: parquet | delta; landing: parquet | jsonl
    mode: Literal["append", "overwrite", "merge"] = "append"
    overwrite: Literal["table", "partitions"] = "table"  # with mode overwrite: the whole table, or the partitions
    keys: list[str] = Field(default_factory=list)  # merge: rows with the same keys are one row
    order_by: str | None = None  # merge: the row with the greatest value wins
    partition_by: list[PartitionColumn] = Field(default_factory=list)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    target_file_size: str = "256MB"
    compaction: Compaction | None = None

    @field_validator("compaction", mode="before")
    @classmethod
    def _compaction(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @model_validator(mode="after")
    def _table_or_landing(self) -> WriteOptions:
        if (self.table is None) == (self.landing is None):
            raise ValueError(
                "`write` needs `table` (a table to write) or `landing` (a prefix to write files into, which "
                "another workflow loads), not both"
            )
        if self.table is not None and self.format == "jsonl":
            raise ValueError("tables are `parquet` or `delta`; `jsonl` is for `write.landing` files")
        if self.landing is not None:
            self.landing = landing_prefix(self.landing, "`write.landing`")
            if self.format == "delta":
                raise ValueError("files written to `landing` are `parquet` or `jsonl`; `delta` is a table format")
            unsupported = [k for k in ("partition_by", "compaction", "keys", "order_by") if getattr(self, k)]
            if self.mode != "append" or unsupported:
                raise ValueError(
                    "`write.landing` writes one file per landed file, for the next workflow; "
                    + (f"`mode: {self.mode}`" if self.mode != "append" else f"`{unsupported[0]}`")
                    + " belongs on the workflow that writes the table"
                )
        return self

    @model_validator(mode="after")
    def _merge_needs_keys(self) -> WriteOptions:
        if self.mode == "merge" and not self.keys:
            raise ValueError("`mode: merge` needs `keys` (the columns that identify a row)")
        if self.mode != "merge" and (self.keys or self.order_by):
            raise ValueError("`keys` and `order_by` apply to `mode: merge` only")
        return self

    @field_validator("partition_by", mode="before")
    @classmethod
    def _parse_partitions(cls, value: Any) -> list[PartitionColumn]:
        if value is None:
            return []
        if isinstance(value, (str, dict)):
            value = [value]
        return [parse_partition(v) for v in value]

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"table name `{value}`: use letters, digits and `_`, not starting with a digit")
        return value

    @field_validator("target_file_size")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value


def parse_size(text: str | int) -> int:
    """`"256MB"` -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"size `{text}`: expected a number with a unit such as `128MB` or `1GB`")
    unit = (m.group(2) or "B").upper().replace("I", "").rstrip("B") or "B"
    scale = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
    return int(float(m.group(1)) * scale)


def _steps_before(value: Any) -> Any:
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


class RangeSpec(_Model):
    column: str
    min: float | None = None
    max: float | None = None


class AcceptedValues(_Model):
    column: str
    values: list[Any]


class RegexSpec(_Model):
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value


class UniqueSpec(_Model):
    columns: list[str]
    against_table: bool = False  # also not already in the table


class RowCount(_Model):
    min: int | None = None
    max: int | None = None


RULE_KINDS = ("not_null", "unique", "range", "accepted_values", "regex", "expect", "row_count")


class Rule(_Model):
    """One data-quality rule and what to do with rows (or files, for `row_count`) that break it."""

    action: Literal["fail", "quarantine", "warn"] = "fail"
    name: str | None = None
    not_null: list[str] | None = None
    unique: UniqueSpec | None = None
    range: RangeSpec | None = None
    accepted_values: AcceptedValues | None = None
    regex: RegexSpec | None = None
    expect: str | None = None
    row_count: RowCount | None = None

    _row_expression = field_validator("expect")(lambda cls, value: _expression(value))

    @field_validator("not_null", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"columns": [value]}
        return {"columns": value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        kinds = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "each rule has exactly one of "
                + ", ".join(f"`{k}`" for k in RULE_KINDS)
                + (f"; found {', '.join(f'`{k}`' for k in kinds)}" if kinds else "")
            )
        if self.row_count is not None and self.action == "quarantine":
            raise ValueError("`row_count` judges a whole file: its action is `fail` or `warn`")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in RULE_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        arg = getattr(self, self.kind)
        if isinstance(arg, list):
            detail = ",".join(arg)
        elif isinstance(arg, str):
            detail = arg
        else:
            detail = getattr(arg, "column", None) or ",".join(getattr(arg, "columns", []) or []) or ""
        return f"{self.kind}({detail})" if detail else self.kind


class SchemaPolicy(_Model):
    """How a file whose columns differ from the table's is handled."""

    hints: dict[str, str] = Field(default_factory=dict)  # declared types, applied after the steps
    evolution: Literal["evolve", "rescue", "freeze", "discard_row"] = "evolve"

    _types = field_validator("hints")(lambda cls, value: _known_types(value))


class TableSource(_Model):
    """A workflow fed by a table: each run that writes rows into `table` becomes one run of this workflow, over
    the rows that run wrote (by their `_run_id`), as the table holds them when this run starts."""

    table: str


TABLE_EVENTS = "_tables/"  # `_tables/<table>/<run id>`: the events of a table's runs (never a landed file)


class Workflow(_Model):
    """One workflow: which files it takes, how it reads, reshapes and writes them."""

    name: str
    match: str = ""  # a prefix or glob under the landing zone; or `source`
    source: TableSource | None = None  # instead of `match`: fed by the runs that write a table
    read: ReadOptions = Field(default_factory=ReadOptions)
    transform: list[Step] = Field(default_factory=list)
    write: WriteOptions
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    validate_: list[Rule] = Field(default_factory=list, alias="validate")
    schema_: SchemaPolicy = Field(default_factory=SchemaPolicy, alias="schema")
    normalize_names: bool = False
    lineage: bool = True
    on_change: Literal["replace", "append"] = "replace"
    batch: bool | None = None  # None: batch small files when every step is row-wise
    engine: str | None = None  # None: the file's `engine`; `duckdb`, `spark`, `auto` (or a registered engine)
    spark_above: str | None = None  # with `engine: auto`; None: the file's `spark_above`

    _engine = field_validator("engine")(lambda cls, value: None if value is None else known_engine(value))

    @model_validator(mode="after")
    def _match_or_source(self) -> Workflow:
        if self.source is None:
            if not self.match:
                raise ValueError("a workflow needs `match` (which landed files it takes) or `source: {table: ...}`")
            return self
        if self.match:
            raise ValueError("`match` or `source`, not both: a workflow fed by a table takes no landed files")
        self.match = f"{TABLE_EVENTS}{self.source.table}/"  # its runs' keys: `_tables/<table>/<run id>`
        self.read.format = "parquet"  # the rows are handed over as Parquet
        return self

    @field_validator("spark_above")
    @classmethod
    def _above(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    _steps = field_validator("transform", mode="before")(_steps_before)

    @model_validator(mode="after")
    def _one_child_tables_step(self) -> Workflow:
        found = [s for s in self.transform if s.kind == "child_tables"]
        if len(found) > 1:
            raise ValueError("at most one `child_tables` step per workflow; list every column in it")
        for path in found[0].child_tables.columns if found else {}:
            parent = path.rpartition(".")[0]
            if parent and parent not in found[0].child_tables.columns:
                raise ValueError(
                    f"child table `{path}` lives in the elements of `{parent}`: list `{parent}` as a child table too"
                )
        if self.write.landing is not None and (found or any(r.action == "quarantine" for r in self.validate_)):
            raise ValueError(
                "`write.landing` files carry the rows on; `child_tables` and `quarantine` rules need a table "
                "(put them on the workflow that loads the files)"
            )
        if found and self.write.mode != "append":
            raise ValueError(
                f"`child_tables` needs `write.mode: append` (not `{self.write.mode}`): child rows are "
                "linked to the rows of the run that wrote them"
            )
        if not self.lineage:
            self._without_lineage(bool(found))
        return self

    def _without_lineage(self, child_tables: bool) -> None:
        """`lineage: false` leaves out `_source_file`, `_ingested_at` and `_run_id`; what needs them is refused."""
        if self.write.mode == "append" and self.on_change == "replace":
            raise ValueError(
                "`lineage: false` leaves out `_source_file`, which `on_change: replace` (the default) needs to find a "
                "changed file's earlier rows; set `on_change: append` (a changed file's rows are added again) or keep "
                "lineage"
            )
        if child_tables:
            raise ValueError("`child_tables` link child rows to their parents' run: keep `lineage` (the default)")

    @property
    def child_tables(self) -> dict[str, str]:
        """List column -> child table name."""
        for step in self.transform:
            if step.kind == "child_tables":
                return {
                    c: t or f"{self.write.table}__{c.replace('.', '__')}" for c, t in step.child_tables.columns.items()
                }
        return {}

    @property
    def joins(self) -> list[str]:
        """The tables its `sql` steps join (read at the version current when a run starts)."""
        return sorted({t for step in self.transform if step.kind == "sql" for t in tables_of(step.sql)})

    @property
    def batchable(self) -> bool:
        if self.write.landing is not None or self.source is not None:
            return False  # one file out per file in; one upstream run at a time
        if self.write.mode == "overwrite":
            return False  # each file is the whole table (or its partitions) on its own
        if not self.lineage:
            return False  # a batch's rows are told apart by `_source_file`
        if self.validate_ or self.schema_.evolution == "discard_row":
            return False  # rules report and quarantine rows by their line in one file
        if self.batch is not None:
            return self.batch
        return all(step.kind in ROW_WISE for step in self.transform)


class StreamBuffer(_Model):
    """When a stream's records are flushed into a landed file (whichever comes first, as Firehose's buffering
    hints), and how much unflushed data it holds before producers are told to slow down."""

    size_mb: float = Field(5.0, gt=0, le=1024)
    interval_seconds: float = Field(60.0, gt=0, le=86400)
    limit_mb: float | None = Field(None, gt=0)  # default: the larger of 64 and 4 x size_mb

    @property
    def size_bytes(self) -> int:
        return int(self.size_mb * (1 << 20))

    @property
    def limit_bytes(self) -> int:
        return int((self.limit_mb if self.limit_mb is not None else max(64.0, 4 * self.size_mb)) * (1 << 20))

    @model_validator(mode="after")
    def _limit_above_size(self) -> StreamBuffer:
        if self.limit_mb is not None and self.limit_mb < self.size_mb:
            raise ValueError(
                f"`limit_mb` ({self.limit_mb:g}) is below `size_mb` ({self.size_mb:g}): a buffer could never fill; "
                "raise `limit_mb` or leave it out"
            )
        return self


_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELD_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")


def landing_prefix(value: str, what: str) -> str:
    """A prefix under the landing zone, `raw/clicks/`: relative, inside the zone, not hidden."""
    from landfall.events import safe_key

    try:
        key = safe_key(value.rstrip("/"))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    hidden = [part for part in key.split("/") if part.startswith((".", "_"))]
    if hidden:
        raise ValueError(
            f"{what} `{value}`: `{hidden[0]}` starts with `.` or `_`, and such names are never loaded; rename it"
        )
    return key + "/"


class StreamConfig(_Model):
    """A stream: records posted over HTTP (or the Firehose / Kinesis API) become JSON Lines files under `prefix`."""

    name: str
    prefix: str | None = None  # default `<name>/`
    buffer: StreamBuffer = Field(default_factory=StreamBuffer)
    partition_by: list[str] = Field(default_factory=list)  # record fields: `event_type=view/` folders
    format: Literal["jsonl"] = "jsonl"
    compression: Literal["none", "gzip"] = "none"
    max_record_size: str = "1000KiB"  # larger records are refused (or go to `error_prefix`)
    error_prefix: str | None = None  # records that cannot be delivered land here instead of being refused

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STREAM_NAME.fullmatch(value):
            raise ValueError(f"stream name `{value}`: use 1 to 64 letters, digits, `_`, `.` or `-`")
        return value

    @field_validator("partition_by", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else (value or [])
        for item in value:
            if not isinstance(item, str) or not _FIELD_PATH.fullmatch(item):
                raise ValueError(
                    f"partition field `{item}`: expected a record field name (letters, digits, `_`, `-`, not "
                    "starting with `_`), or a dotted path into nested objects such as `customer.country`"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"partition fields repeat: {value}")
        return value

    @field_validator("max_record_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if parse_size(value) < 1:
            raise ValueError("`max_record_size` must be at least 1 byte")
        return value

    @model_validator(mode="after")
    def _prefixes(self) -> StreamConfig:
        self.prefix = landing_prefix(self.prefix or f"{self.name}/", "stream prefix")
        if self.error_prefix is not None:
            self.error_prefix = landing_prefix(self.error_prefix, "`error_prefix`")
            if self.error_prefix.startswith(self.prefix) or self.prefix.startswith(self.error_prefix):
                raise ValueError(
                    f"`error_prefix` `{self.error_prefix}` and `prefix` `{self.prefix}` overlap: the workflow "
                    "of the stream's files would load its error records too; use separate folders such as "
                    f"`errors/{self.name}/`"
                )
        return self

    @property
    def record_limit(self) -> int:
        return parse_size(self.max_record_size)


class SparkSettings(_Model):
    """Where workflows with `engine: spark` run: `master` is `local[*]`, `local[N]`, `spark://host:7077`, `yarn`
    or `k8s://...`; `conf` holds any Spark properties (`spark.executor.memory: 4g`)."""

    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)
    app_name: str = "landfall"

    @field_validator("conf", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML reads `4g` as text but `2` as a number, `true` as a bool
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class Zones(_Model):
    """Where each zone lives: a folder, or a URL (`s3://bucket/prefix`, `file://`, `memory://`)."""

    landing: str | None = None
    tables: str | None = None
    quarantine: str | None = None
    state: str | None = None

    @field_validator("landing", "tables", "quarantine", "state")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        return _zone_url(value)


def _zone_url(value: str | None) -> str | None:
    """A folder, or a URL of a storage protocol fsspec knows (its library may still be missing: that is one line
    with the install command when the zone is opened)."""
    if value is None or "://" not in value:
        return value
    protocol = value.split("://", 1)[0]
    from fsspec.registry import known_implementations, registry

    if protocol not in known_implementations and protocol not in registry:
        from landfall.redaction import redact

        raise ValueError(
            f"`{redact(value)}`: unknown storage protocol `{protocol}://`; use a folder or a URL such as "
            "`s3://bucket/prefix`, `file:///data/lake`, `memory://tests`"
        )
    return value


class StorageSettings(_Model):
    """How to reach zones on object storage (`s3://`). Unset values come from the usual `AWS_*` environment
    variables and profiles (`~/.aws/credentials`)."""

    endpoint_url: str | None = None  # an S3-compatible server, e.g. `http://127.0.0.1:8333`
    region: str | None = None
    key: str | None = None  # access key id
    secret: str | None = None  # secret access key
    token: str | None = None  # session token (temporary credentials)
    profile: str | None = None  # a profile of ~/.aws/credentials
    anon: bool = False  # public buckets: no signing
    options: dict[str, Any] = Field(default_factory=dict)  # more fsspec/s3fs arguments, passed as they are
    delta_options: dict[str, str] = Field(default_factory=dict)  # more delta-rs storage options, as they are
    # Delta commits through the state store's lock: `auto` when the server ignores conditional writes (probed)
    commit_lock: Literal["auto", "always", "never"] = "auto"

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL such as `http://127.0.0.1:8333`; got `{value}`")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _credentials(self) -> StorageSettings:
        if bool(self.key) != bool(self.secret):
            raise ValueError("`key` and `secret` go together: set both, or neither (then AWS_* or a profile)")
        if self.anon and (self.key or self.profile):
            raise ValueError("`anon: true` reads public buckets without credentials; remove `key`/`profile`")
        return self

    def resolved(self) -> Any:
        from landfall.storage import StorageOptions

        return StorageOptions(
            endpoint_url=self.endpoint_url,
            region=self.region,
            key=self.key,
            secret=self.secret,
            token=self.token,
            profile=self.profile,
            anon=self.anon,
            options=dict(self.options),
            delta_options=dict(self.delta_options),
            commit_lock=self.commit_lock,
        )


class QuarantineRateAbove(_Model):
    """Alert when a run sets aside more than this share of the rows it read (0.05: 5%)."""

    quarantine_rate_above: float = Field(gt=0, le=1)
    workflow: str | None = None  # only this workflow's runs


class NoFileFor(_Model):
    """Alert when no file has landed under `prefix` for this long (`30m`, `2h`, `1d`)."""

    no_file_for: str
    prefix: str = ""

    @field_validator("no_file_for")
    @classmethod
    def _duration(cls, value: str) -> str:
        from landfall.maintenance import parse_duration

        parse_duration(value)
        return value


def _alert_kind(item: Any) -> str:
    if isinstance(item, dict):
        return "freshness" if "no_file_for" in item else "rate"
    if isinstance(item, (QuarantineRateAbove, NoFileFor)):
        return "rate" if isinstance(item, QuarantineRateAbove) else "freshness"
    return "event"


AlertRule = Annotated[
    Annotated[Literal["dead_letter", "schema_change"], Tag("event")]
    | Annotated[QuarantineRateAbove, Tag("rate")]
    | Annotated[NoFileFor, Tag("freshness")],
    Discriminator(_alert_kind),
]


class AlertSettings(_Model):
    """One webhook and what it is told about."""

    webhook: str
    format: Literal["json", "slack"] = "json"
    on: list[AlertRule] = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. Authorization for the receiver
    max_attempts: int = Field(6, ge=1)  # tries per alert, with exponential backoff (1 s, 2 s, 4 s, ... 60 s)
    timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true; in an alert it can only mean `on`
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    @field_validator("on", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        expected = (
            "expected `dead_letter`, `schema_change`, `{quarantine_rate_above: 0.05}` or "
            "`{no_file_for: 2h, prefix: sales/}`"
        )
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item not in ("dead_letter", "schema_change"):
                raise ValueError(f"unknown alert event `{item}`; {expected}")
            if isinstance(item, dict) and not ({"quarantine_rate_above", "no_file_for"} & set(item)):
                raise ValueError(f"unknown alert rule `{item}`; {expected}")
        return value

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL; got `{value}`")
        return value


class ServeSettings(_Model):
    """`landfall serve`: the HTTP API, dashboard and `/metrics`."""

    host: str = "127.0.0.1"  # another address makes the token required for every call
    port: int = Field(8080, ge=0, le=65535)  # 0: any free port
    token_env: str = "LANDFALL_TOKEN"  # the environment variable holding the bearer token
    token: str | None = None  # the token itself (prefer `token_env`: a file is easier to leak)
    query_row_limit: int = Field(10_000, ge=1)  # rows the query endpoint and SQL page return at most
    query_timeout_seconds: float = Field(30.0, gt=0)  # a query running longer is stopped

    def bearer_token(self, environ: dict[str, str] | None = None) -> str | None:
        """The token from `token`, else from the environment variable `token_env`."""
        env = os.environ if environ is None else environ
        return self.token or env.get(self.token_env) or None


class DuckDBSettings(_Model):
    """The DuckDB engine's resources (`duckdb:`): one database per process and lake, shared by its workers."""

    threads: int | None = Field(None, ge=1)  # default: one per core
    memory_limit: str | None = None  # e.g. `1GB`; default: DuckDB's own (80% of RAM); beyond it DuckDB spills

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value


class Settings(_Model):
    """The whole of `landfall.yaml`."""

    lake: str = "./lake"

    _lake_url = field_validator("lake")(lambda cls, value: _zone_url(value))
    zones: Zones = Field(default_factory=Zones)
    state_url: str | None = None
    storage: StorageSettings = Field(default_factory=StorageSettings)
    scratch_dir: str | None = None  # local folder for temporary files (copies of remote files); default: system temp
    workers: int = Field(2, ge=1, le=64)  # worker threads per process
    processes: int = Field(1, ge=1, le=64)  # worker processes `up` and `worker` start on this host (1: in-process)
    sources: list[SourceConfig] | None = None  # event sources of `up`; default: see `intake`
    batch_files: int = Field(500, ge=1)
    batch_bytes: str = "64MB"
    lease_seconds: float = Field(30.0, gt=0)
    reconcile_seconds: float = Field(5.0, gt=0)
    settle_seconds: float = Field(1.0, ge=0)
    compaction_seconds: float = Field(10.0, gt=0)  # how often `up` looks for tables to compact
    engine: str = "duckdb"  # what runs workflows that do not say: an engine from `landfall.registry`, or `auto`
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings)
    spark_above: str = "2GB"  # `engine: auto`: batches bigger than this run on Spark
    spark: SparkSettings = Field(default_factory=SparkSettings)
    workflows: list[Workflow] = Field(default_factory=list)
    streams: list[StreamConfig] = Field(default_factory=list)
    stream_log_dir: str | None = None  # local folder of the streams' segment logs; default `<state zone>/streams`
    serve: ServeSettings = Field(default_factory=ServeSettings)
    alerts: list[AlertSettings] = Field(default_factory=list)
    alert_check_seconds: float = Field(5.0, gt=0)  # how often alerts look at the state store

    # where the settings came from, for messages and for resolving relative paths
    source: str = Field(default="<defaults>", exclude=True)
    base_dir: str = Field(default=".", exclude=True)

    _engine = field_validator("engine")(lambda cls, value: known_engine(value))

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [w.name for w in self.workflows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"workflow names must be unique; repeated: {', '.join(f'`{d}`' for d in dupes)}")
        matches = [w.match for w in self.workflows]
        same = sorted({m for m in matches if matches.count(m) > 1})
        if same:
            raise ValueError(
                f"two workflows have the same `match` {', '.join(f'`{m}`' for m in same)}; "
                "a file must have one most specific workflow"
            )
        parse_size(self.batch_bytes)
        from landfall.redaction import remember_url

        for url in (self.lake, self.state_url, *self.zones.model_dump().values()):
            remember_url(url)  # its password never reaches a log line, an error or a run record
        state_zone = self.zones.state or self.lake
        if self.state_url is None and "://" in state_zone and not state_zone.startswith("file://"):
            from landfall.redaction import redact

            raise ValueError(
                f"the state store's default place is under the lake, and `{redact(state_zone)}` is not a local "
                "folder: set `state_url` (e.g. `sqlite:////var/lib/landfall/state.db`, or "
                "`postgresql://user@host/db` for many hosts)"
            )
        tables_zone = self.zones.tables or self.lake
        written = sorted({w.write.table for w in self.workflows if w.write.table})
        for wf in self.workflows:
            unknown = [t for t in wf.joins if t not in written]
            if unknown:
                raise ValueError(
                    f"workflow `{wf.name}`: a `sql` step reads table `{unknown[0]}`, which is not allowed: no workflow "
                    "writes it; a `sql` step may join the tables workflows of this file write"
                    + (": " + ", ".join(f"`{t}`" for t in written) if written else " (there are none)")
                )
        for fed in (w for w in self.workflows if w.source):
            writers = [w for w in self.workflows if w.write.table == fed.source.table]
            if not writers:
                raise ValueError(
                    f"workflow `{fed.name}`: `source.table` `{fed.source.table}` is not a table a workflow writes"
                    + (": " + ", ".join(f"`{t}`" for t in written) if written else "")
                )
            if fed in writers or any(not w.lineage for w in writers):
                raise ValueError(
                    f"workflow `{fed.name}`: table `{fed.source.table}` "
                    + ("is the table it writes" if fed in writers else "is written with `lineage: false`")
                    + "; a workflow fed by a table reads the rows each run wrote there by their `_run_id`"
                )
        for hop in (w for w in self.workflows if w.write.landing):
            out = hop.write.landing

            def reads(w: Workflow, out: str = out) -> bool:
                literal = w.match.split("*")[0]
                return out.startswith(literal) or literal.startswith(out)

            if reads(hop):
                raise ValueError(f"workflow `{hop.name}` writes into `{out}`, which its own `match` reads")
            fed = [w for w in self.workflows if w is not hop and reads(w)]
            appending = [w.name for w in fed if w.on_change == "append"]
            if appending:
                raise ValueError(
                    f"workflow `{appending[0]}` loads the files workflow `{hop.name}` writes: it needs "
                    "`on_change: replace` (a file written again replaces its rows), not `append`"
                )
        stream_names = [s.name for s in self.streams]
        repeated = sorted({n for n in stream_names if stream_names.count(n) > 1})
        if repeated:
            raise ValueError(f"stream names must be unique; repeated: {', '.join(f'`{r}`' for r in repeated)}")
        if self.streams and not self.stream_log_dir and "://" in self.state_dir:
            raise ValueError(
                f"streams keep their segment log on a local disk, and the state zone `{self.state_dir}` is not "
                "one: set `stream_log_dir` to a local folder"
            )
        if self.stream_log_dir and "://" in self.stream_log_dir:
            raise ValueError(f"`stream_log_dir` `{self.stream_log_dir}`: expected a local folder (fsync needs one)")
        parse_size(self.spark_above)
        self._check_sources()
        for wf in self.workflows:
            if wf.write.format == "delta" and tables_zone.startswith("memory://"):
                raise ValueError(
                    f"workflow `{wf.name}`: `delta` tables need a local folder or an object store (`s3://`) as "
                    "the tables zone; `memory://` lives inside one process, where delta-rs cannot see it"
                )
            part_names = [p.name for p in wf.write.partition_by]
            if len(set(part_names)) != len(part_names):
                raise ValueError(f"workflow `{wf.name}`: partition names repeat: {part_names}")
        self._zones_apart()
        from landfall.registry import check_available

        for wf in self.workflows:  # a library a backend needs is missing: say so now, not on every file
            try:
                check_available("table", wf.write.format)
            except ImportError as exc:
                raise ValueError(f"workflow `{wf.name}`: {exc}") from None
        return self

    def _check_sources(self) -> None:
        names = [s.name for s in self.sources or []]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"`sources`: `{repeated[0]}` is named twice; name each source once")
        landing = self.zones.landing or self.lake
        local = "://" not in landing or landing.startswith("file://")
        if "watch" in names and not local:
            raise ValueError(
                f"`sources`: `watch` watches a local folder, and the landing zone `{landing}` is not one; use "
                "`listing` (and `sqs` for S3 event notifications)"
            )
        if "sqs" in names and not landing.startswith(("s3://", "s3a://")):
            raise ValueError(
                f"`sources`: `sqs` reads S3 event notifications, and the landing zone `{landing}` is not on S3; set "
                "`zones.landing` to the bucket the notifications come from (`s3://bucket/prefix`)"
            )

    def intake(self) -> list[SourceConfig]:
        """The event sources `up` runs: `sources`, else `listing` and `watch` on a local landing zone and
        `listing` on an object store."""
        if self.sources is not None:
            return list(self.sources)
        landing = self.landing_url
        local = "://" not in landing
        return [SourceConfig.model_validate(n) for n in (("listing", "watch") if local else ("listing",))]

    def intake_source(self, name: str) -> SourceConfig | None:
        """The `sources:` entry of that name `up` runs, if any."""
        return next((s for s in self.intake() if s.name == name), None)

    # --- zones --------------------------------------------------------------------------------------------

    def _zones_apart(self) -> None:
        """No zone lies inside another (landfall would find its own tables, quarantine or state as landed files,
        or write into the files it reads). Raises `ValueError` naming both."""
        places = {
            "zones.landing": self.landing_url,
            "zones.tables": self.tables_url,
            "zones.quarantine": self.quarantine_url,
            "zones.state": self.state_dir,
        }
        if self.state_url and self.state_url.startswith("sqlite:///"):
            places["state_url"] = self._resolve(self.state_url.removeprefix("sqlite:///"))
        if self.stream_log_dir:
            places["stream_log_dir"] = self.stream_log_path
        if self.scratch_dir:
            places["scratch_dir"] = self.scratch_root
        names = list(places)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                outer, inner = (a, b) if len(places[a]) <= len(places[b]) else (b, a)
                if places[inner] == places[outer] or places[inner].startswith(places[outer].rstrip("/") + "/"):
                    from landfall.redaction import redact

                    where = "is" if places[inner] == places[outer] else "lies inside"
                    raise ValueError(
                        f"`{inner}` ({redact(places[inner])}) {where} `{outer}` ({redact(places[outer])}); "
                        "zones must not overlap (landfall would read its own output as landed files, or write into "
                        "what it reads): give each its own folder, e.g. `lake/landing`, `lake/tables`"
                    )

    def _zone(self, name: str) -> str:
        explicit = getattr(self.zones, name)
        if explicit:
            return self._resolve(explicit)
        sub = "_landfall" if name == "state" else name
        return self._join(self._resolve(self.lake), sub)

    def _resolve(self, url: str) -> str:
        if url.startswith("file://"):
            url = url.removeprefix("file://")
        if "://" in url:
            return url.rstrip("/")
        path = Path(url).expanduser()
        if not path.is_absolute():
            path = Path(self.base_dir) / path
        return str(path.resolve())

    @staticmethod
    def _join(base: str, sub: str) -> str:
        return f"{base.rstrip('/')}/{sub}"

    @property
    def landing_url(self) -> str:
        return self._zone("landing")

    @property
    def tables_url(self) -> str:
        return self._zone("tables")

    @property
    def quarantine_url(self) -> str:
        return self._zone("quarantine")

    @property
    def state_dir(self) -> str:
        return self._zone("state")

    @property
    def scratch_root(self) -> str:
        """The local folder temporary files go under: `scratch_dir`, or `landfall` in the system's temp folder."""
        if self.scratch_dir:
            return self._resolve(self.scratch_dir)
        import tempfile

        return os.path.join(tempfile.gettempdir(), "landfall")

    @property
    def storage_options(self) -> Any:
        """The resolved `storage:` options (a `landfall.storage.StorageOptions`)."""
        return self.storage.resolved()

    @property
    def stream_log_path(self) -> str:
        """The local folder holding one segment log per stream."""
        return self._resolve(self.stream_log_dir) if self.stream_log_dir else self._join(self.state_dir, "streams")

    def stream(self, name: str) -> StreamConfig:
        for st in self.streams:
            if st.name == name:
                return st
        known = ", ".join(f"`{s.name}`" for s in self.streams) or "none"
        raise ConfigError(f"no stream named `{name}`; known: {known}")

    def stream_of(self, key: str) -> StreamConfig | None:
        """The stream whose files (or error files) land where `key` is."""
        for st in self.streams:
            if key.startswith(st.prefix or "") or (st.error_prefix and key.startswith(st.error_prefix)):
                return st
        return None

    def fed_by(self, table: str | None) -> list[Workflow]:
        """The workflows fed by `table`'s runs (`source: {table: ...}`)."""
        return [w for w in self.workflows if w.source is not None and w.source.table == table]

    def landed_by_landfall(self, key: str) -> bool:
        """Whether `key` is where landfall itself lands files: a stream's prefix, or a workflow's
        `write.landing`. Such files are named for what they hold, so their content key covers the name too."""
        return self.stream_of(key) is not None or any(
            wf.write.landing and key.startswith(wf.write.landing) for wf in self.workflows
        )

    @property
    def state(self) -> str:
        return self.state_url or f"sqlite:///{self.state_dir}/state.db"

    def engine_for(self, workflow: Workflow, size: int) -> str:
        """The engine that runs a batch of `size` bytes for `workflow`: its `engine` (or the file's), with
        `auto` choosing Spark above `spark_above`."""
        name = workflow.engine or self.engine
        if name == "auto":
            above = parse_size(workflow.spark_above or self.spark_above)
            return "spark" if size > above else "duckdb"
        return name

    def check_engines(self) -> None:
        """Workflows that may run on Spark: their SQL must translate (a missing function fails now, not mid-run)."""
        for wf in self.workflows:
            if (wf.engine or self.engine) in ("spark", "auto"):
                from landfall.engines.spark.translate import check_workflow

                check_workflow(wf)

    def workflow(self, name: str) -> Workflow:
        for wf in self.workflows:
            if wf.name == name:
                return wf
        known = ", ".join(f"`{w.name}`" for w in self.workflows) or "none"
        raise ConfigError(f"no workflow named `{name}`; known: {known}")


# --- loading --------------------------------------------------------------------------------------------------


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
