"""What one Spark job carries from step to step: the job, the files as Spark reads them, and the per-job state
(temp views, child tables, what to observe) passed explicitly instead of living on the engine; and the internal
columns a reader's rows carry (which file, which split, which position)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from landfall.engines.base import LINEAGE as LINEAGE  # the engine's modules take it from here
from landfall.engines.base import Job, ReadPlan, Source

SRC = "__lf_src"  # which file of a batch a row came from (its index)
BLOCK = "__lf_block"  # the byte offset of the file split a row was read in
MID = "__lf_mid"  # monotonically_increasing_id: consecutive within one split, in file order
ROW = "__lf_row"  # a record's position in its file (1-based), once computed
PID = "__lf_pid"  # a parent row's id, linking it to its child rows (`child_tables`)
CORRUPT = "__lf_corrupt"  # the raw text of a record Spark's reader could not parse
HIDDEN = (SRC, BLOCK, MID, ROW, PID, CORRUPT)

_names = itertools.count(1)
_names_lock = threading.Lock()


def c(name: str) -> Column:
    """A column by its exact name (dots and spaces included)."""
    return F.col(q(name))


def q(name: str) -> str:
    """Quote an identifier for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def unique_name(prefix: str) -> str:
    with _names_lock:
        return f"__lf_{prefix}{next(_names)}"


@dataclass
class Input:
    """One landed file as Spark reads it."""

    index: int
    source: Source
    path: str  # a local path Spark can read (UTF-8, in the job's scratch folder when it had to be rewritten)
    spark_path: str  # the same, under a name Spark reads literally (`_in/<index>.<ext>`)
    line_offset: int = 0  # lines before the first record (header, skipped rows)
    document: str | None = None  # JSON document: the file before its rewrite as JSON Lines (see `lines_path`)
    dialect: Any = None  # CSV: the `lines.Dialect` it was read with
    whole: bool = True  # CSV: read whole (values may span lines) rather than line by line
    scan: Any = None  # CSV: a Future of `reading.Scan` (an unclosed quote's line; the records, when `checked`)
    checked: bool = False  # CSV: read line by line with records Spark cannot parse dropped, and counted beside

    @property
    def lines_path(self) -> str:
        """The file whose lines records are named by: the landed document for JSON (Spark reads `path`, its
        rewrite as JSON Lines), else `path`."""
        return self.document or self.path


@dataclass
class Ctx:
    """One job's state on its way through the engine."""

    spark: SparkSession
    job: Job
    fmt: str
    inputs: list[Input] = field(default_factory=list)
    plan: ReadPlan = field(default_factory=ReadPlan)  # how this attempt reads (see `landfall.engines.base`)
    numbered: bool = False  # rows carry BLOCK and MID, for their lines
    local: Any = None  # (path or URL, scratch folder) -> a local path: table files on an object store are copied
    views: list[str] = field(default_factory=list)
    children: dict[str, DataFrame] = field(default_factory=dict)  # child table -> its rows
    misses: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # check -> (column, type, its text)
    parsed_doubles: set[str] = field(default_factory=set)  # columns Spark's CSV or JSON parser reads as doubles
    observations: list[Any] = field(default_factory=list)  # pyspark Observations, read after the write
    raws: list[DataFrame] = field(default_factory=list)  # the readers' rows (SRC, BLOCK, MID), for record numbers
    encodings: dict[str, dict[str, Any]] = field(default_factory=dict)  # landed key -> the encoding it was read in
    notes: dict[str, str] = field(default_factory=dict)  # landed key -> a note for its run
    typed: DataFrame | None = None  # the rows as read and cast, before anything is counted
    rejects: DataFrame | None = None  # records Spark could not parse (CORRUPT holds their text)
    # rows set aside for a value their declared type cannot hold whole (`bad_rows: quarantine`): check -> flag
    misfits: DataFrame | None = None
    aside: dict[str, str] = field(default_factory=dict)
    json_columns: dict[str, str] = field(default_factory=dict)  # JSON records' columns read: name -> DuckDB type
    json_detected: dict[str, str] = field(default_factory=dict)  # ... as DuckDB detected them (`JSON`, `"NULL"`)
    judged_text: list[str] = field(default_factory=list)  # the text columns rules judge (a message names one)

    @property
    def batch(self) -> bool:
        return len(self.inputs) > 1

    @property
    def workflow(self) -> Any:
        return self.job.workflow

    def view(self, df: DataFrame) -> str:
        """A temp view of `df` (dropped after the job)."""
        name = unique_name("v")
        df.createOrReplaceTempView(name)
        self.views.append(name)
        return name

    def named_view(self, name: str, df: DataFrame) -> str:
        """A temp view under a name of the caller's (a table a `sql` step joins; dropped after the job)."""
        df.createOrReplaceTempView(name)
        self.views.append(name)
        return name

    def drop_views(self) -> None:
        for name in self.views:
            self.spark.catalog.dropTempView(name)
        self.views = []

    def observe(self, name: str) -> Any:
        """A new observation (metrics Spark computes while it runs the job's first action through it)."""
        from pyspark.sql import Observation

        obs = Observation(unique_name(name))
        self.observations.append((name, obs))
        return obs

    def observed(self, name: str) -> dict[str, Any]:
        for n, obs in self.observations:
            if n == name:
                return obs.get
        return {}

    def key_of(self, index: int) -> str:
        return self.inputs[index].source.key


def columns(df: DataFrame) -> list[str]:
    """A DataFrame's columns, without landfall's internal ones."""
    return [n for n in df.columns if n not in HIDDEN]


@contextmanager
def timed(steps: list[dict[str, Any]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        steps.append({"step": name, "seconds": round(time.perf_counter() - start, 6)})


# --- the reader's rows ---------------------------------------------------------------------------------------


def tagged(ctx: Ctx, df: DataFrame) -> DataFrame:
    """The reader's rows with their file (batches) and, when lines are wanted, their split and position."""
    extra = []
    if ctx.batch:
        extra.append(src_index().alias(SRC))
    if ctx.numbered:
        extra.append(F.col("_metadata.file_block_start").alias(BLOCK))
        extra.append(F.monotonically_increasing_id().alias(MID))
    out = df.select("*", *extra) if extra else df
    ctx.raws.append(out)
    return out


def src_index() -> Column:
    """Which file of a batch a row came from: the index in the name Spark read it under (`_in/<n>.<ext>`)."""
    return F.regexp_extract(F.col("_metadata.file_path"), r"/([0-9]+)\.[a-z.]+$", 1).cast("int")


def internal(df: DataFrame) -> list[Column]:
    """The internal columns (`__lf_...`) a reader's rows carry."""
    return [c(n) for n in df.columns if n.startswith("__lf_")]


def reason(text: str) -> str:
    """The reason in an error's text: its first line, without the error's kind (`Invalid Input Error: `)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0].split("Error: ", 1)[-1] if lines else "unreadable input"
