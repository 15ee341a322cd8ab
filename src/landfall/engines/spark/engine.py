"""The Spark engine: the same workflows as DuckDB, on Spark (`local[*]`, a standalone cluster, YARN, k8s).

Reads CSV / JSON / JSON Lines / Parquet, applies the workflow's steps as DataFrame operations (SQL translated
from DuckDB's dialect), checks rules, and writes Parquet (as `write.compression` and `write.parquet_version` say)
into the job's staging folder with per-file stats; the table formats commit those files exactly as they commit
DuckDB's. Table upkeep (rewrites, compaction, replay) is in `upkeep.py`.

One pass over the input for a clean file: rows per file, records that could not be parsed, values that did not
fit their detected type and every rule's violations are counted while the output is written (Spark
observations). Anything found sends the job through again the way DuckDB's engine does: detect types on the
whole file, read CSV files whole, or number records to name lines.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
from typing import Any

import duckdb
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall import encoding as enc
from landfall import partitions
from landfall.config import ParquetFiles
from landfall.engines.base import (
    Engine,
    Job,
    ReadPlan,
    Replan,
    Replayed,
    Source,
    Staged,
    StagedFile,
    named_in,
    rule_expressions,
    rule_named,
    text_hint,
    where_in,
)
from landfall.engines.duckdb.diagnose import (
    csv_record_line,
    json_text_line,
    made_by_steps,
    not_valid,
    parquet_value_row,
)
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS
from landfall.engines.duckdb.jsonkeys import late_key
from landfall.engines.duckdb.reading import empty_note as no_records
from landfall.engines.duckdb.repeated_header import holds_header_again
from landfall.engines.duckdb.sql import source_format
from landfall.engines.spark import quality, reading, steps, upkeep, writing
from landfall.engines.spark.casts import infinite_in
from landfall.engines.spark.context import CORRUPT, HIDDEN, PID, ROW, SRC, Ctx, c, timed
from landfall.engines.spark.lines import dropped, record_lines
from landfall.engines.spark.numbering import first_line, with_rows
from landfall.engines.spark.session import error_text, session
from landfall.engines.spark.types import schema_of
from landfall.errors import InvalidInput, SchemaConflict
from landfall.jsontext import not_a_record
from landfall.schema import merged

_CAST = re.compile(r'landfall-cast:("(?:[^"\\]|\\.)*"|null):(.*):([A-Z][A-Z0-9 ,()"_\[\]]*)')  # casts._refused
_NOT_A_NUMBER = re.compile(r"The value '(.*?)' of the type \"STRING\" cannot be cast to")
_INVALID_INPUT = re.compile(
    r"\[CAST_INVALID_INPUT\] The value '(.*?)' of the type \"STRING\" cannot be cast to \"(\w+)\""
)
#: Spark's names of types in its errors -> the SQL names `landfall query` (DuckDB) gives them
_SQL_NAMES = {"INT": "INTEGER", "TIMESTAMP_NTZ": "TIMESTAMP", "TIMESTAMP": "TIMESTAMPTZ", "STRING": "VARCHAR"}


def _pointed_at(exc: Exception) -> list[str]:
    """The SQL fragments a Spark error points at (its query context)."""
    try:
        return [qc.fragment().strip() for qc in exc.getQueryContext()]  # type: ignore[attr-defined]
    except Exception:  # not a Spark error with a query context
        return []


def _holds(expressions: list[str], fragments: list[str]) -> bool:
    return any(f and any(f in e for e in expressions) for f in fragments)


def _step_failed(workflow: Any, exc: Exception) -> str | None:
    """The step (as messages name it) whose SQL holds the expression a Spark error points at, if any."""
    fragments = _pointed_at(exc)
    return next((where for where, step in workflow.steps() if _holds(step.expressions(), fragments)), None)


def _rule_failed(workflow: Any, exc: Exception) -> Any | None:
    """The rule whose SQL holds the expression a Spark error points at, if any."""
    fragments = _pointed_at(exc)
    return next((rule for rule in workflow.validate_ if _holds(rule_expressions(rule), fragments)), None)


class SparkEngine(Engine):
    name = "spark"

    def __init__(
        self,
        master: str = "local[*]",
        conf: dict[str, str] | None = None,
        app_name: str = "landfall",
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self.app_name = app_name
        self._sniffer: duckdb.DuckDBPyConnection | None = None
        self._storages: list[Any] = []

    @classmethod
    def from_settings(cls, settings: Any) -> SparkEngine:
        """Set up from `landfall.yaml`'s `spark:` section (master, conf)."""
        return cls(master=settings.spark.master, conf=dict(settings.spark.conf), app_name=settings.spark.app_name)

    def use_storage(self, storage: Any) -> None:
        """Zones whose table files the engine may have to read (merge, `unique` against the table); files on
        an object store are read from local copies (Spark here has no S3 connector)."""
        self._storages.append(storage)

    def _local(self, path: str, scratch: str) -> str:
        """A local path for a table file (a copy in `scratch` when it is on an object store): Spark here reads
        local files only (the pyspark wheel has no S3 connector; see the README)."""
        if "://" not in path:
            return path
        for storage in self._storages:
            base = storage.url.rstrip("/") + "/"
            if path.startswith(base):
                os.makedirs(scratch, exist_ok=True)
                return storage.local_path(path[len(base) :], scratch)
        raise InvalidInput(f"`{path}`: not in a zone the engine can read")

    @property
    def spark(self) -> Any:
        """The process's Spark session (started on first use)."""
        return session(self.master, self.conf, self.app_name)

    @property
    def sniffer(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for detection (dialects, types): both engines detect alike."""
        if self._sniffer is None:
            self._sniffer = duckdb.connect(":memory:")
            self._sniffer.execute("SET TimeZone = 'UTC'")
        return self._sniffer

    def close(self) -> None:
        if self._sniffer is not None:
            self._sniffer.close()
            self._sniffer = None

    # --- a job ---------------------------------------------------------------------------------------------

    def empty_note(self, src: Source, job: Job) -> str | None:
        return no_records(self.sniffer, src, job.workflow, job.scratch_dir, job.table_schema)  # as on DuckDB

    def attempt(self, job: Job, plan: ReadPlan) -> Staged:
        fmt = source_format(job.workflow, job.sources[0])
        for src in job.sources[1:]:
            if source_format(job.workflow, src) != fmt:
                raise InvalidInput("files of different formats in one batch")  # the runner splits batches
        wf = job.workflow
        # rows of a workflow with rules (or rows set aside) are numbered from the start: in Spark that costs a
        # column, not a pass
        numbered = plan.number_rows or wf.judges_rows
        ctx = Ctx(spark=self.spark, job=job, fmt=fmt, plan=plan, numbered=numbered, local=self._local)
        try:
            return self._run(ctx)
        except PySparkException as exc:
            raise self._explain(ctx, exc) from exc
        finally:
            ctx.drop_views()

    def _run(self, ctx: Ctx) -> Staged:
        job, wf = ctx.job, ctx.workflow
        steps_done: list[dict[str, Any]] = []
        with timed(steps_done, "read"):
            reading.prepare(ctx, self.sniffer)
            df = reading.read(ctx, self.sniffer)
        with timed(steps_done, "transform"):
            df = steps.transform(ctx, df)
        df, extra = quality.fit_schema(ctx, df)
        rules: list[Any] = []
        flagged = None
        if wf.validate_ or extra:
            with timed(steps_done, "validate"):
                flagged, rules = quality.flag(ctx, df, extra)
                df = quality.good_rows(flagged, rules)
        children: dict[str, Staged] = {}
        if ctx.children:
            with timed(steps_done, "child tables"):
                children = self._write_children(ctx, df)
        with timed(steps_done, "transform"):
            df = writing.finish(ctx, df)
            replaced: list[str] = []
            if wf.write.mode == "merge":
                df, replaced = writing.merge(ctx, df)
            schema = schema_of(df.schema, HIDDEN)
        with timed(steps_done, "write"):
            parts = [p.name for p in wf.write.partition_by]
            try:
                files = writing.write(ctx, df, os.path.join(job.staging, "data"), job.commit_id, parts, wf.write.files)
            except Exception as exc:  # a folder whose name is too long: Spark says `Mkdirs failed`, Python ENAMETOOLONG
                if parts and ("Mkdirs failed" in str(exc) or getattr(exc, "errno", None) == errno.ENAMETOOLONG):
                    raise (self._too_long_to_name(ctx, df) or exc) from exc
                raise
            files, nulls = writing.null_typed(ctx, df, files, wf.write.files)
            if nulls:
                schema = [(n, "null" if n in nulls else t) for n, t in schema]
            arrow = writing.arrow_schema(df, files)
        read = ctx.observed("read")
        self._check_read(ctx, read)
        quality_: dict[str, Any] = {}
        quarantine: list[StagedFile] = []
        q_schema: list[tuple[str, str]] = []
        if rules:
            with timed(steps_done, "validate"):
                quality_, q_rows = quality.judge(ctx, flagged, rules)
                if q_rows is not None:
                    q_rows = writing.with_lineage(ctx, q_rows)
                    q_schema = schema_of(q_rows.schema, HIDDEN)
                    quarantine = writing.write(
                        ctx, q_rows, os.path.join(job.staging, "quarantine"), job.commit_id, [], wf.write.files
                    )
        rows_in = self._rows_in(ctx, read)
        misfits = any(int(read.get(check, 0)) for check in ctx.aside)
        if int(read.get("corrupt", 0)) or misfits:
            with timed(steps_done, "quarantine"):
                rejected, counts = self._parse_rejects(ctx, corrupt=int(read.get("corrupt", 0)) > 0)
                q_files = writing.write(
                    ctx,
                    rejected,
                    os.path.join(job.staging, "quarantine-parse"),
                    f"{job.commit_id}-parse",
                    [],
                    wf.write.files,
                )
                quarantine += q_files
                r_schema = schema_of(rejected.schema, HIDDEN)
                q_schema = merged(q_schema, r_schema) if q_schema else r_schema
                quality_["parse"] = {"action": "quarantine", "violations": sum(counts.values())}
                quality_["_parse_by_source"] = counts
        with timed(steps_done, "stats"):
            file_sources, rows_out = writing.file_sources(ctx, files, carried=bool(replaced))
        for src in job.sources:
            rows_out.setdefault(src.key, 0)
            rows_in.setdefault(src.key, 0)
        return Staged(
            files=files,
            schema=schema,
            rows_in=rows_in,
            rows_out=rows_out,
            file_sources=file_sources,
            steps=steps_done,
            replaced=replaced,
            arrow_schema=arrow,
            quality=quality_,
            quarantine_files=quarantine,
            quarantine_schema=q_schema,
            children=children,
            encodings=dict(ctx.encodings),
            notes=dict(ctx.notes),
        )

    def _rows_in(self, ctx: Ctx, read: dict[str, Any]) -> dict[str, int]:
        if not ctx.batch:
            return {ctx.inputs[0].source.key: int(read.get("rows", 0))}
        return {inp.source.key: int(read.get(f"rows{inp.index}", 0)) for inp in ctx.inputs}

    def _write_children(self, ctx: Ctx, parents: DataFrame) -> dict[str, Staged]:
        """Each child table's rows, without the children of parent rows that a later step or a rule took out."""
        out: dict[str, Staged] = {}
        keep_all = PID not in parents.columns  # a `sql` step dropped the link: keep every child
        for table, child in ctx.children.items():
            if not keep_all:
                child = child.join(parents.select(PID), on=PID, how="left_semi")
            child = writing.with_lineage(ctx, child)
            child = writing.fitted_to(ctx, child, ctx.job.child_schemas.get(table))
            try:
                files = writing.write(
                    ctx,
                    child,
                    os.path.join(ctx.job.child_staging[table], "data"),
                    ctx.job.commit_id,
                    [],
                    ctx.job.workflow.write.files,
                )
            except PySparkException as exc:  # the first to read the rows: a value that does not fit fails here
                raise self._explain(ctx, exc, (table, ctx.workflow.child_sources[table])) from exc
            file_sources, rows_out = writing.file_sources(ctx, files)
            out[table] = Staged(
                files=files,
                schema=schema_of(child.schema, HIDDEN),
                rows_in={},
                rows_out=rows_out,
                file_sources=file_sources,
                arrow_schema=writing.arrow_schema(child, files),
            )
        return out

    # --- what the first pass found -------------------------------------------------------------------------

    def _check_read(self, ctx: Ctx, read: dict[str, Any]) -> None:
        """Records that could not be parsed and values that missed their detected type: run again (whole-file
        detection, whole-file CSV reading, numbered records) or fail naming the file, the line and the value."""
        o = ctx.workflow.read
        scans = {inp.index: inp.scan.result() for inp in ctx.inputs if inp.scan is not None}
        if not ctx.plan.newlines and any(s.mixed for s in scans.values()):
            raise Replan(ctx.plan.but(newlines=True), "line endings of more than one kind: make them all LF")
        for inp in ctx.inputs:
            line = scans[inp.index].unclosed if inp.index in scans else None
            if line is not None:
                raise reading.unclosed_error(inp.source.key, line, inp.dialect.quote)
        corrupt = int(read.get("corrupt", 0))
        plan = ctx.plan
        rows = self._rows_in(ctx, read)
        if any(inp.checked and dropped(inp, rows[inp.source.key]) for inp in ctx.inputs):
            # Spark dropped a record it could not parse (a broken record, a value it does not take as its type):
            # read again as text, each record checked, numbered for the lines of those set aside
            raise Replan(plan.but(csv_text=True, number_rows=True), "a record was dropped: read it as text")
        if beyond := [n for i, n in enumerate(sorted(ctx.parsed_doubles)) if int(read.get(f"infinite{i}", 0))]:
            self._beyond_a_double(ctx, beyond[0])
        if corrupt and ctx.fmt == "csv" and not plan.whole_files and (whole := self._split_quotes(ctx)):
            raise Replan(whole, "a quoted value spans lines: read the files whole")
        if corrupt and ctx.fmt in ("json", "jsonl") and not plan.sample_all and self._type_misses(ctx):
            raise Replan(plan.but(sample_all=True), "a later value missed its detected type")
        if ctx.json_columns and not plan.sample_all and max(rows.values(), default=0) > DETECTION_SAMPLE_ROWS:
            paths = [i.path for i in ctx.inputs]
            lenient = o.bad_rows == "quarantine"  # lines that are not JSON may be among them
            if late_key(self.sniffer, paths, "newline_delimited", ctx.json_columns, lenient=lenient):
                raise Replan(plan.but(sample_all=True), "a key past the type sample: detect on whole files")
        if any(int(read.get(check, 0)) for check in ctx.aside) and not ctx.numbered:
            raise Replan(plan.but(number_rows=True), "rows set aside: number records for their lines")
        missed = [
            (name, duck)
            for check, (name, duck, _) in ctx.misses.items()
            if int(read.get(check, 0)) and check not in ctx.aside
        ]
        if missed:
            detected = [(n, d) for n, d in missed if n not in o.types]
            if detected and ctx.batch and not plan.per_file_types:
                # a file of the batch breaks the first file's types: detect each file's (Spark widens them)
                raise Replan(plan.but(per_file_types=True), "a file of the batch breaks the first file's types")
            if (
                detected
                and ctx.fmt == "csv"
                and not plan.header_lines
                and any(holds_header_again(i.path, o.skip_rows) for i in ctx.inputs)
            ):  # files put together, a header line past the part looked through first: read copies without it
                raise Replan(plan.but(header_lines=True), "the header line again: read a copy without it")
            if detected and not plan.sample_all:
                raise Replan(plan.but(sample_all=True), "the sample missed a later value: detect on whole files")
            fresh = {n for n, _ in detected} - plan.as_text
            if fresh:  # values of mixed forms: keep the column as text
                raise Replan(plan.but(as_text=plan.as_text | fresh), "values of mixed forms: keep them as text")
            if ctx.batch:
                raise InvalidInput("a value does not fit its declared type")  # the runner runs each file alone
            if not ctx.numbered:
                raise Replan(plan.but(number_rows=True), "a value does not fit: number records for its line")
            name, duck = missed[0]
            keep = next(k for n, _, k in ctx.misses.values() if n == name)
            rows = ctx.typed.where(c(keep).isNotNull() & c(name).isNull())
            value = rows.select(c(keep)).first()
            if ctx.fmt == "json":  # the line of the value's key in the document, as the DuckDB engine names it
                line = _line_of(ctx, name, value[0]) if value else None
            else:
                _, line = first_line(ctx, rows)
            key = ctx.inputs[0].source.key
            where = where_in(key, line, ctx.fmt)
            raise SchemaConflict(
                f"{where}: {not_valid(value[0] if value else '', name, duck)}",
                file=key,
                line=line,
            )
        if corrupt and o.bad_rows == "fail":
            if not ctx.numbered:
                raise Replan(plan.but(number_rows=True), "a record does not parse: number records for its line")
            src, line = first_line(ctx, ctx.rejects)
            raw = ctx.rejects.select(c(CORRUPT)).first()
            key = ctx.inputs[src or 0].source.key
            reason = self._reason(ctx, raw[0] if raw else "", src or 0)
            raise InvalidInput(f"{where_in(key, line, ctx.fmt)}: {reason}", file=key, line=line)
        if corrupt and not ctx.numbered:
            raise Replan(plan.but(number_rows=True), "records set aside: number records for their lines")

    def _split_quotes(self, ctx: Ctx) -> ReadPlan | None:
        """Records read line by line that could not be parsed and hold a quote (a quoted value spans lines): the
        plan that reads the files whole, else None. When the sniffer saw no quote (none in its sample) and none
        is declared, `"` is looked for, and the files are then detected whole too, so the quote is found."""
        by_lines = [i for i in ctx.inputs if i.dialect and not i.whole]
        quotes = {i.dialect.quote for i in by_lines if i.dialect.quote}
        unseen = ctx.workflow.read.quote is None and any(not i.dialect.quote for i in by_lines)
        if unseen:
            quotes.add('"')
        if not quotes:
            return None
        holds = F.lit(False)
        for quote in quotes:
            holds = holds | c(CORRUPT).contains(quote)
        if ctx.rejects.where(holds).limit(1).count() == 0:
            return None
        return ctx.plan.but(whole_files=True, sample_all=ctx.plan.sample_all or unseen)

    def _beyond_a_double(self, ctx: Ctx, name: str) -> None:
        """Spark's CSV and JSON parsers take a number beyond a double's range (`1e400`) for an infinity. A CSV is
        read again as text, where such a number is told from an infinity written as a word (`casts.text_as`); JSON's
        parser never gives the number's text back (as text it is `"Infinity"`): JSON Lines are read again from a
        copy where each field holding such a number is text (`jsonnumbers.digits_as_text`; a document's rewrite as
        JSON Lines does that at once). Should one still be found, the file fails, naming the line."""
        plan = ctx.plan
        if ctx.fmt == "csv":
            raise Replan(plan.but(csv_text=True), "an infinite double Spark parsed: read it as text (`1e400` is none)")
        if ctx.fmt == "jsonl" and not plan.beyond_double:
            raise Replan(plan.but(beyond_double=True), "an infinite double Spark parsed: its field as text")
        if ctx.batch:
            raise InvalidInput("an infinite double")  # the runner runs each file alone
        if not ctx.numbered:
            raise Replan(plan.but(number_rows=True), "an infinite double: number records for its line")
        _, line = first_line(ctx, ctx.typed.where(infinite_in(c(name), ctx.typed.schema[name].dataType)))
        key = ctx.inputs[0].source.key
        raise SchemaConflict(
            f"{where_in(key, line, ctx.fmt)}: a value of column `{name}` is a number beyond a double's range, which "
            "Spark's JSON reader takes for an infinity; the DuckDB engine keeps it as text (`engine: duckdb`)",
            file=key,
            line=line,
        )

    def _type_misses(self, ctx: Ctx) -> bool:
        """JSON records Spark refused although they are JSON objects: a value that does not fit a detected type
        (beside lines that are no objects, which are set aside or fail the file)."""
        objects = ctx.rejects.where(F.ltrim(c(CORRUPT)).startswith("{")).select(c(CORRUPT)).limit(20).collect()

        def is_object(text: str) -> bool:
            try:
                return isinstance(json.loads(text), dict)
            except ValueError:
                return False

        return any(is_object(r[0]) for r in objects)

    def _reason(self, ctx: Ctx, raw: str, src: int) -> str:
        """Why a record could not be parsed, for an error that fails the file (worded as the DuckDB engine's)."""
        reason, _ = self._why(ctx, raw, src)
        m = re.match(r"(?:MISSING|TOO MANY) COLUMNS: Expected Number of Columns: (\d+) Found: (\d+)", reason)
        return f"expected {m.group(1)} fields (as in the header), found {m.group(2)}" if m else reason

    def _why(self, ctx: Ctx, raw: str, src: int) -> tuple[str, str | None]:
        """Why a record could not be parsed (worded as DuckDB's rejects word it), and the column to blame."""
        if ctx.fmt in ("json", "jsonl"):
            return not_a_record(raw) or "a value does not fit the column's type", None
        d = ctx.inputs[src].dialect
        names = [n for n in ctx.typed.columns if not n.startswith("__lf_")] if ctx.typed is not None else []
        try:
            rec = next(csv.reader(io.StringIO(raw), delimiter=d.delimiter, quotechar=d.quote or None, strict=True), [])
        except csv.Error as exc:
            return f"malformed CSV: {exc}", None
        found, expected = len(rec), len(names)
        if found < expected:
            return f"MISSING COLUMNS: Expected Number of Columns: {expected} Found: {found}", names[found]
        if found > expected:
            return f"TOO MANY COLUMNS: Expected Number of Columns: {expected} Found: {found}", None
        return "malformed CSV record", None

    def _parse_rejects(self, ctx: Ctx, *, corrupt: bool = True) -> tuple[DataFrame, dict[str, int]]:
        """Records that could not be parsed, and rows with a value their declared type cannot hold whole
        (`ctx.misfits`), as quarantine rows: `_raw`, `_line`, `_rule` `parse`, `_column`, `_reason` (worked out
        in Python, per record), with lineage. Also counts them per file."""
        got: list[tuple[int, int, str | None, str | None, str | None]] = []  # (file, record, raw, reason, column)
        if corrupt:
            numbered = with_rows(ctx, ctx.rejects)
            src_col = c(SRC) if SRC in numbered.columns else F.lit(0)
            for r in numbered.select(src_col.alias("s"), c(ROW).alias("r"), c(CORRUPT).alias("raw")).collect():
                got.append((int(r["s"]), int(r["r"]), r["raw"], *self._why(ctx, r["raw"], int(r["s"]))))
        if ctx.misfits is not None and ctx.aside:
            numbered = with_rows(ctx, ctx.misfits)
            src_col = c(SRC) if SRC in numbered.columns else F.lit(0)
            column = F.coalesce(*[F.when(c(f), F.lit(ctx.misses[k][0])) for k, f in ctx.aside.items()])
            value = F.coalesce(*[F.when(c(f), c(ctx.misses[k][2])) for k, f in ctx.aside.items()])
            duck = F.coalesce(*[F.when(c(f), F.lit(ctx.misses[k][1])) for k, f in ctx.aside.items()])
            picked = numbered.select(src_col.alias("s"), c(ROW).alias("r"), column, value, duck).collect()
            for s, r, name, v, t in picked:
                got.append((int(s), int(r), None, f"value `{v}` of column `{name}` is not a valid {t}", name))
        by_src: dict[int, list[int]] = {}
        for s, r, *_ in got:
            by_src.setdefault(s, []).append(r)
        lines = {
            s: record_lines(
                ctx.inputs[s].lines_path, ctx.fmt, rows, dialect=ctx.inputs[s].dialect, whole=ctx.inputs[s].whole
            )
            for s, rows in by_src.items()
        }
        untold = {(s, lines[s].get(r)) for s, r, raw, *_ in got if raw is None}  # set aside after parsing
        texts = {s: enc.line_texts(ctx.inputs[s].lines_path, {n for t, n in untold if t == s}) for s in by_src}
        rows = [
            (raw if raw is not None else texts[s].get(lines[s].get(r), ""), lines[s].get(r), reason, column, s)
            for s, r, raw, reason, column in got
        ]
        schema = T.StructType(
            [
                T.StructField("_raw", T.StringType()),
                T.StructField("_line", T.LongType()),
                T.StructField("_reason", T.StringType()),
                T.StructField("_column", T.StringType()),
                T.StructField(SRC, T.IntegerType()),
            ]
        )
        df = ctx.spark.createDataFrame(rows, schema).select(
            "_raw",
            "_line",
            F.lit("parse").alias("_rule"),
            "_column",
            "_reason",
            F.current_timestamp().cast(T.TimestampType()).alias("_quarantined_at"),
            *([c(SRC)] if ctx.batch else []),
        )
        counts: dict[str, int] = {}
        for s, recs in by_src.items():
            counts[ctx.inputs[s].source.key] = len(recs)
        return writing.with_lineage(ctx, df), counts

    def _too_long_to_name(self, ctx: Ctx, df: DataFrame) -> InvalidInput | None:
        """The file's error when a partition value is too long to name its folder (`partitions.too_long`)."""
        limit = partitions.name_max(os.path.join(ctx.job.staging, "data"))
        fmt = ctx.fmt
        for p in ctx.workflow.write.partition_by:
            value = c(p.name).cast("string")
            found = (
                df.select(value, c("_source_file").cast("string"))
                .where(F.octet_length(value) * 3 > partitions.room(p.name, limit))
                .distinct()
                .limit(1000)
                .collect()
            )
            one = len(ctx.inputs) == 1
            line_of = (lambda k, v, col=p.column: _line_of(ctx, col, v)) if one and not p.function else None
            if err := partitions.too_long(p.name, [(r[0], r[1]) for r in found], limit, fmt, line_of):
                return err
        return None

    def _explain(self, ctx: Ctx, exc: Exception, child: tuple[str, str] | None = None) -> InvalidInput:
        """A Spark error as one that names the file, the line and the reason (`child`: a child table's, `(its
        table, the file's list column its rows come from)`, in which the value's line is looked for)."""
        text = error_text(exc)
        key = ctx.inputs[0].source.key if len(ctx.inputs) == 1 else "the batch"
        m = _CAST.search(str(exc))
        if m:
            name: str | None = json.loads(m.group(1))
            value, typ = m.group(2), m.group(3).strip().removesuffix(" SQLSTATE")  # Spark's words follow it
            line = _line_of(ctx, name, value) if len(ctx.inputs) == 1 else None
            made = made_by_steps(ctx.workflow) if line is None and len(ctx.inputs) == 1 else ""
            if made and child and (line := _line_of(ctx, child[1], value)):
                made = f" (child table `{child[0]}`, from `{child[1]}`)"
            where = where_in(key, line, ctx.fmt)
            return SchemaConflict(f"{where}: {not_valid(value, name, typ)}{made}", file=key, line=line)
        step = _step_failed(ctx.workflow, exc)
        one = len(ctx.inputs) == 1 and not step
        bad = _INVALID_INPUT.search(text) if one and not _rule_failed(ctx.workflow, exc) else None
        if bad:  # a cast in SQL of text that is no value of the type: its value, column and line, as DuckDB's says
            value, typ = bad.group(1), _SQL_NAMES.get(bad.group(2), bad.group(2))
            columns = ctx.typed.columns if ctx.typed is not None else []
            column, line = next(((n, at) for n in columns if (at := _line_of(ctx, n, value))), (None, None))
            return SchemaConflict(
                f"{where_in(key, line, ctx.fmt)}: {not_valid(value, column, typ)}", file=key, line=line
            )
        found = _NOT_A_NUMBER.search(text)
        if step:  # a step's expression Spark refused a value in while it ran: name the step, as binding does
            text = f"{step}: {text}{text_hint(None, found.group(1)) if found else ''}"
        elif rule := _rule_failed(ctx.workflow, exc):  # a rule's, as DuckDB's binding does: with the text column
            texts = [n for n in ctx.judged_text if named_in(n, rule_expressions(rule))]
            hint = text_hint(texts[0] if texts else None, found.group(1) if found else None, "a `transform` step")
            text = f"workflow `{ctx.workflow.name}` {rule_named(rule)}: {text}{hint}"
        return InvalidInput(f"`{key}`: {text}", file=key)

    # --- table upkeep (in `upkeep.py`) ----------------------------------------------------------------------

    def rewrite(
        self,
        files: list[tuple[str, str]],
        exclude_keys: list[str],
        staging: str,
        commit_id: str,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        return upkeep.rewrite(self.spark, self._local, files, exclude_keys, staging, commit_id, files_as)

    def compact(
        self,
        files: list[tuple[str, str]],
        staging: str,
        commit_id: str,
        target_file_size: int,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        return upkeep.compact(self.spark, self._local, files, staging, commit_id, target_file_size, files_as)

    def replay(self, job: Job, files: list[str], run_id: str | None) -> Replayed:
        return upkeep.replay(self.spark, self._local, job, files, run_id)

    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="landfall-counts-") as scratch:
            local = {p: self._local(p, scratch) for p in paths}
            counts = writing.source_counts(list(local.values()))
        return {p: counts[local[p]] for p in paths}


def _line_of(ctx: Ctx, column: str | None, value: str) -> int | None:
    """The line of the one input's first record whose `column` holds `value` (a JSON record by its key, a CSV
    record by its header). None without a column, or when the file has no such column (one a step made)."""
    inp = ctx.inputs[0]
    try:
        if column is None:
            return None
        if ctx.fmt in ("json", "jsonl"):
            return json_text_line(inp.lines_path, column, value, ctx.fmt)
        if ctx.fmt == "parquet":
            return parquet_value_row(inp.path, column, value)
        d = inp.dialect
        if ctx.fmt == "csv" and d is not None and d.header and not d.skip and not d.comment:
            return csv_record_line(inp.path, column, value, d.delimiter, d.quote, d.escape)
    except (OSError, UnicodeDecodeError, csv.Error):  # naming the line is best effort: the error stands
        return None
    return None


__all__ = ["SparkEngine"]
