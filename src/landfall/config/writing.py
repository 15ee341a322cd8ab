"""Where a workflow's rows go (`write:`): a table with its mode, keys, partitions and compaction, or files
into another landing prefix."""

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from landfall.config.common import landing_prefix, size_text
from landfall.config.model import Context, Model, at

_PARTITION_FUNCS = ("year", "month", "day", "hour")
_PARTITION_EXPR = re.compile(r"^\s*(year|month|day|hour)\s*\(\s*([^()]+?)\s*\)\s*$", re.IGNORECASE)


class PartitionColumn(Model, kw_only=True):
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


class ParquetFiles(msgspec.Struct, frozen=True):
    """How a table's Parquet files are written (`write.compression`, `write.parquet_version`): every file a run,
    a rewrite or a compaction makes for it, on either engine."""

    compression: str = "zstd"
    version: str = "v1"  # v2: Parquet's newer encodings (delta, byte stream split) where they pay


class Compaction(Model, kw_only=True):
    """Rewrite a partition's small files into few large ones once it has `min_files` files."""

    enabled: bool = True
    min_files: Annotated[int, Meta(ge=2)] = 16
    target_file_size: str = "128MB"


def _partitions(value: Any) -> Any:
    """`partition_by:` as written (one entry or a list of them) as the mappings of its `PartitionColumn`s."""
    parts = [] if value is None else [value] if isinstance(value, str | dict) else value
    if not isinstance(parts, list):
        return value
    columns = list(map(parse_partition, parts))
    for c in columns:
        _plain_name(c.name)
    return [{"name": c.name, "column": c.column, "function": c.function} for c in columns]


def _plain_name(name: str) -> None:
    """A partition column's name is written into folder names (`region=eu/`): one that would be escaped there
    (`Sales%20Region=eu/`) is read back under the escaped name by DuckDB's reader (and so by landfall's queries)
    and under the plain one by others, so only a name no reader changes is taken."""
    from landfall.partitions import escaped

    if escaped(name) != name:
        plain = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "part"
        raise ValueError(
            f"partition column `{name}`: a partition column's name goes into folder names, where readers take it "
            f"differently once escaped (`{escaped(name)}=`); use a name of letters, digits and `_`: rename the "
            f"column in a step (`rename: {{{name}: {plain}}}`, or `normalize_names: true`) and partition by "
            f"`{plain}`"
        )


def _periods_pinned(parts: list[PartitionColumn]) -> None:
    """Under `overwrite: partitions` a file replaces the partitions it brings, so a partition must be one period:
    `month(c)` is the month of the year (`month=11` holds every November), `day(c)` the day of the month and
    `hour(c)` the hour of the day, each one period only beside the levels above it (`year(c)`, ...)."""
    levels = {(p.column, p.function) for p in parts}
    above = {"month": ["year"], "day": ["year", "month"], "hour": ["year", "month", "day"]}
    example = {  # what it is, what a file would replace, the value that names one period
        "month": (
            "the month of the year",
            "of November 2026 would replace every November's rows (`{n}=11`)",
            "date_trunc('month', {c})",
        ),
        "day": (
            "the day of the month",
            "of 2026-02-01 would replace the rows of every month's 1st (`{n}=1`)",
            "CAST({c} AS DATE)",
        ),
        "hour": (
            "the hour of the day",
            "of 10:00 would replace every day's 10:00 rows (`{n}=10`)",
            "date_trunc('hour', {c})",
        ),
    }
    for p in parts:
        if p.function in above and any((p.column, f) not in levels for f in above[p.function]):
            what, replaced, period = example[p.function]
            whole = [*above[p.function], p.function]
            raise ValueError(
                f"`{p.function}({p.column})` is {what}: with `overwrite: partitions` a file "
                f"{replaced.format(n=p.name)}; partition by [{', '.join(f'{f}({p.column})' for f in whole)}], or by "
                f'a column a step makes (`compute: {{{p.column}_{p.function}: "{period.format(c=p.column)}"}}`, '
                f"then `partition_by: [{p.column}_{p.function}]`)"
            )


class WriteOptions(Model, kw_only=True):
    table: str | None = None  # a table; or `landing`: files into another prefix, for the next workflow (a hop)
    landing: str | None = None
    format: Literal["parquet", "delta", "jsonl"] = "parquet"  # tables: parquet | delta; landing: parquet | jsonl
    mode: Literal["append", "overwrite", "merge"] = "append"
    overwrite: Literal["table", "partitions"] = "table"  # with mode overwrite: the whole table, or the partitions
    keys: list[str] = []  # merge: rows with the same keys are one row
    order_by: str | None = None  # merge: the row with the greatest value wins
    partition_by: list[PartitionColumn] = []
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    parquet_version: Literal["v1", "v2"] = "v1"  # v2: smaller, cheaper files, for readers of the newer encodings
    target_file_size: str = "256MB"
    compaction: Compaction | None = None

    _short_forms = {
        "compaction": lambda v: ({} if v else None) if isinstance(v, bool) else v,
        "partition_by": _partitions,
    }

    def _check(self, context: Context) -> None:
        with at("table"):
            if self.table is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.table):
                raise ValueError(f"table name `{self.table}`: use letters, digits and `_`, not starting with a digit")
        with at("target_file_size"):
            size_text(self.target_file_size)
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
        if self.mode == "overwrite" and self.overwrite == "partitions":
            with at("partition_by"):
                _periods_pinned(self.partition_by)
        if self.mode == "merge" and not self.keys:
            raise ValueError("`mode: merge` needs `keys` (the columns that identify a row)")
        if self.mode != "merge" and (self.keys or self.order_by):
            raise ValueError("`keys` and `order_by` apply to `mode: merge` only")

    @property
    def files(self) -> ParquetFiles:
        """How this table's Parquet files are written."""
        return ParquetFiles(compression=self.compression, version=self.parquet_version)
