"""Reading landed files on Spark: CSV and Parquet here, JSON Lines and JSON documents in `read_json`, the casts
of text to the detected or declared types in `casts`.

Detection is shared with the DuckDB engine, so both engines see the same columns and types: a CSV file's
dialect, header and column types come from DuckDB's sniffer on a sample of the local file, a JSON file's
columns and types from DuckDB's JSON reader. Spark then reads the values with that dialect (RFC 4180 quoting:
`escape` is the quote, never Spark's default backslash) as text and casts them strictly: a value that does not
fit the detected type is counted while the file is written, and a miss makes the engine detect on the whole
file and run again (as DuckDB does); a declared type that does not fit fails the file with its line.

A CSV file read line by line (bigger than one split) is read the cheap way first: Spark's reader parses the
columns whose types it parses exactly as the strict cast does (doubles, `yyyy-M-d` dates, timestamps) itself,
and drops any record it cannot parse (`DROPMALFORMED`: a record it keeps costs no copy for a corrupt-record
column). A pass over the file's bytes beside Spark's read (`lines.scan`) counts its records; when Spark kept
fewer, something was dropped, and the file is read again as text with every record checked
(`ReadPlan.csv_text`).

Text in any encoding is transcoded to UTF-8 first (`landfall.encoding`, as for DuckDB). Files are read under
names the engine gives them (`_in/<n>.<ext>` in the job's scratch folder: Spark takes paths as glob patterns),
which also tell a batch's rows apart (`SRC`).
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import reduce
from typing import Any

import duckdb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall import encoding as enc
from landfall.engines.base import Replan, text_in_table
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.diagnose import long_line
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS
from landfall.engines.duckdb.jsonnumbers import digits_as_text
from landfall.engines.duckdb.read_csv import (
    as_written,
    dialect_args,
    lost_in,
    mixed_types,
    sample_buffer,
    text_sample,
)
from landfall.engines.duckdb.read_parquet import spark_copy
from landfall.engines.duckdb.reading import (
    _consistent_delimiter,
    _header_as_one_column,
    _readable_path,
    _records_start,
)
from landfall.engines.duckdb.sql import common_args, lit
from landfall.engines.duckdb.types import sql_type as duckdb_type
from landfall.engines.spark.casts import declared, infinite_in, text_as
from landfall.engines.spark.context import CORRUPT, ROW, SRC, Ctx, Input, c, internal, reason, src_index, tagged
from landfall.engines.spark.lines import Dialect, scan
from landfall.engines.spark.read_json import empty_keys_named, json_as_lines, read_json
from landfall.engines.spark.types import TIME
from landfall.errors import InvalidInput
from landfall.pools import pool

NO_QUOTE = "\u0000"
QUOTED_EMPTY_STAYS = "\u0000landfall-null\u0000"  # a null marker no file holds: `""` stays an empty string


def prepare(ctx: Ctx, sniffer: duckdb.DuckDBPyConnection) -> None:
    """Make each source readable by Spark: decompressed unless Spark decompresses it (gzip named `.gz`), UTF-8
    with one kind of line ending and no repeated header lines (as for DuckDB: `engines.duckdb.reading.
    _readable_path`), no BOM, JSON documents as JSON Lines, and linked as `_in/<n>.<ext>` in the job's scratch
    folder."""
    job, opts = ctx.job, ctx.workflow.read
    scratch = os.path.join(job.scratch_dir, "_spark")
    if os.path.isdir(scratch):
        shutil.rmtree(scratch)
    os.makedirs(os.path.join(scratch, "_in"))
    ctx.inputs = []
    for i, src in enumerate(job.sources):
        path, _, decoded, note = _readable_path(src, ctx.fmt, opts, scratch, ctx.plan.newlines, ctx.plan.header_lines)
        if note:
            ctx.notes[src.key] = note
        if ctx.fmt == "parquet":
            path = spark_copy(path, scratch, times=bool(TIME))
        if decoded is not None:
            ctx.encodings[src.key] = decoded.to_json()
        if ctx.fmt != "parquet" and enc.sample(path, _kind(path)).startswith(b"\xef\xbb\xbf"):
            # a UTF-8 BOM: Spark would keep it in the first value
            path = enc.transcode(path, "utf-8-sig", os.path.join(scratch, "_utf8"), compressed=_kind(path))
        document = None
        if ctx.fmt == "jsonl":  # numbers of more digits than a double holds (or beyond its range): text, as on DuckDB
            path = digits_as_text(
                path, os.path.join(scratch, "_digits"), f"{i}.jsonl", beyond_whole=ctx.plan.beyond_double
            )
            if ctx.plan.empty_keys:
                path = empty_keys_named(path, os.path.join(scratch, "_keys"), f"{i}.jsonl", src.key)
        if ctx.fmt == "json":
            document, path = path, json_as_lines(path, os.path.join(scratch, "_json"), src.key, opts.records == "true")
        ext = {"csv": ".csv", "parquet": ".parquet"}.get(ctx.fmt, ".json") + (".gz" if path.endswith(".gz") else "")
        link = os.path.join(scratch, "_in", f"{i}{ext}")
        os.symlink(os.path.abspath(path), link)
        ctx.inputs.append(Input(index=i, source=src, path=path, spark_path=link, document=document))


def _kind(path: str) -> str | None:
    return "gzip" if path.endswith(".gz") else None


def read(ctx: Ctx, sniffer: duckdb.DuckDBPyConnection) -> DataFrame:
    """The rows of every input, typed as detected (or declared), records Spark could not parse left out.

    Counted while the output is written (an observation on the reader's rows): rows per file, records that
    could not be parsed, values that did not fit their detected type. `ctx.raw` keeps the reader's rows for
    record numbers, `ctx.rejects` the records that could not be parsed.
    """
    if ctx.fmt == "csv":
        df = _read_csv(ctx, sniffer)
    elif ctx.fmt == "parquet":
        df = _read_parquet(ctx)
    else:
        df = read_json(ctx, sniffer)
    checks = [F.count(F.lit(1)).alias("rows")]
    if ctx.batch:
        checks += [F.count_if(c(SRC) == i).alias(f"rows{i}") for i in range(len(ctx.inputs))]
    # Spark's parser takes `1e400` for an infinity: an infinite value it parsed sends the file to be read as text,
    # where a number beyond a double's range is told from an infinity written as a word (`casts.text_as`)
    for i, n in enumerate(sorted(ctx.parsed_doubles)):
        checks.append(F.count_if(infinite_in(c(n), df.schema[n].dataType)).alias(f"infinite{i}"))
    if CORRUPT in df.columns:
        checks.append(F.count_if(c(CORRUPT).isNotNull()).alias("corrupt"))
        # Spark refuses to scan a CSV file for its corrupt record column alone (text columns only: nothing else
        # is asked for when the records set aside are looked at); the look goes through this observation, so a
        # value column asked for here is read with it
        if values := [n for n in df.columns if not n.startswith("__lf_")]:
            checks.append(F.count(c(values[0])).alias("values"))
    ctx.typed = df
    # a value missed its type where its text is there and its cast is not: a flag per column, so the rows the
    # observation sees (it evaluates them one by one) carry booleans, not the texts
    flags = {f"__lf_{check}": c(keep).isNotNull() & c(name).isNull() for check, (name, _, keep) in ctx.misses.items()}
    # with `bad_rows: quarantine`, a row whose value its declared type cannot hold whole is set aside (its text
    # kept for the quarantine), as a record that does not parse is
    o = ctx.workflow.read
    if o.bad_rows == "quarantine":
        ctx.aside = {check: f"__lf_{check}" for check, (name, _, _) in ctx.misses.items() if name in o.types}
    texts = [keep for check, (_, _, keep) in ctx.misses.items() if check not in ctx.aside]
    if flags:
        df = df.withColumns(flags).drop(*texts)
        checks += [F.count_if(c(flag)).alias(flag.removeprefix("__lf_")) for flag in flags]
    observed = df.observe(ctx.observe("read"), *checks)
    if CORRUPT in df.columns:
        ctx.rejects = observed.where(c(CORRUPT).isNotNull())
        observed = observed.where(c(CORRUPT).isNull())
    if ctx.aside:
        misfit = reduce(lambda a, b: a | b, [c(flag) for flag in ctx.aside.values()])
        ctx.misfits = observed.where(misfit)
        observed = observed.where(~misfit)
    kept = [ctx.misses[check][2] for check in ctx.aside]
    return observed.drop(*flags, *kept, CORRUPT) if flags or CORRUPT in df.columns else observed


# --- CSV --------------------------------------------------------------------------------------------------------


def sniff(ctx: Ctx, sniffer: duckdb.DuckDBPyConnection, inp: Input) -> tuple[Dialect, list[tuple[str, str]], Any]:
    """DuckDB's sniffer on a local file: the dialect, the columns with their types, and the date formats."""
    o = ctx.workflow.read
    args = dialect_args(o)
    if o.header is not None:
        args.append(f"header = {str(o.header).lower()}")
    if o.skip_rows:
        args.append(f"skip = {int(o.skip_rows)}")
    if o.null_values is not None:
        args.append("nullstr = [" + ", ".join(lit(v) for v in o.null_values) + "]")
    types = {k: duckdb_type(v) for k, v in o.types.items()} | {n: "VARCHAR" for n in ctx.plan.as_text}
    if types:
        args.append("types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items()) + "}")
    if o.all_strings:
        args.append("all_varchar = true")
    args.extend(common_args(ctx.plan, o))
    if o.bad_rows == "quarantine":
        args.append("ignore_errors = true")
    query = (
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, DateFormat, "
        "TimestampFormat FROM sniff_csv({}{}, " + sample_buffer(o) + ")"
    )
    # the delimiter landfall checks itself, as the DuckDB engine does (DuckDB's sniffer, shown rows that do not
    # all agree, may read the header as one column)
    head = enc.sample(inp.path)
    forced = _consistent_delimiter(head, o.skip_rows) if o.delimiter is None else None
    if forced:
        args += [f"delim = {lit(forced[0])}"] + ([] if o.skip_rows else [f"skip = {forced[1]}"])
    try:
        row = sniffer.execute(query.format(lit(inp.path), "".join(", " + a for a in args))).fetchone()
    except duckdb.Error as exc:
        # rows that break the dialect in the sample (a ragged row): detect past them, and let Spark's reader
        # find them with their lines
        try:
            tolerant = [*args, "ignore_errors = true"] if "ignore_errors = true" not in args else args
            row = sniffer.execute(query.format(lit(inp.path), "".join(", " + a for a in tolerant))).fetchone()
        except duckdb.Error:
            if not ctx.plan.newlines and b"\r" in head:  # a line ending unlike the first ones: read a copy whose
                raise Replan(ctx.plan.but(newlines=True), "line endings differ: make them all LF") from None  # are LF
            quote = '"' if o.quote is None else o.quote
            guess = Dialect(
                delimiter=o.delimiter or (forced[0] if forced else ","), quote=quote, escape=o.escape or quote
            )
            line = scan(inp.path, guess).unclosed if quote else None
            if line is not None:
                raise unclosed_error(inp.source.key, line, quote) from None
            limit = errors.line_too_long(str(exc))  # the sniffer's limit: Spark's reader has none
            if limit and (found := long_line(inp.path, limit)):
                key = inp.source.key
                raise InvalidInput(f"`{key}` line {found[0]}: {found[1]}", file=key, line=found[0]) from None
            raise InvalidInput(f"`{inp.source.key}`: {_sniff_reason(str(exc))}", file=inp.source.key) from None
    names = [col["name"] for col in row[7]]
    if o.delimiter is None and not forced and (delim := _header_as_one_column(names)):
        args += [f"delim = {lit(delim)}"] + ([] if o.skip_rows else [f"skip = {_records_start(head, 0)[1]}"])
        try:
            row = sniffer.execute(query.format(lit(inp.path), "".join(", " + a for a in args))).fetchone()
        except duckdb.Error as exc:
            raise InvalidInput(f"`{inp.source.key}`: {_sniff_reason(str(exc))}", file=inp.source.key) from None
    delim, quote, escape, newline, comment, skip, header, cols, datefmt, tsfmt = row
    quote = "" if quote == "(empty)" else quote
    escape = quote if escape == "(empty)" else escape
    dialect = Dialect(
        delimiter=delim,
        quote=quote,
        escape=escape,
        header=bool(header),
        skip=int(skip),
        comment="" if comment in (None, "(empty)") else comment,
        newline={"\\r\\n": "\r\n", "\\r": "\r"}.get(newline, "\n"),
    )
    text = as_written(sniffer, inp.path, row, o)  # undecidable dates, hexadecimal and binary numbers
    columns = [(col["name"], "VARCHAR" if col["name"] in text else col["type"]) for col in cols]
    return dialect, columns, (o.date_format or datefmt, o.timestamp_format or tsfmt)


def _read_csv(ctx: Ctx, sniffer: duckdb.DuckDBPyConnection) -> DataFrame:
    o = ctx.workflow.read
    groups: dict[object, list[Input]] = {}
    for inp in ctx.inputs:  # files whose header lines are the same bytes share one sniff (unless each is its own)
        groups.setdefault(inp.index if ctx.plan.per_file_types else _first_line(inp.path), []).append(inp)
    sniffed = [(members, *sniff(ctx, sniffer, members[0])) for members in groups.values()]
    mixed = mixed_types([cols for _, _, cols, _ in sniffed]) - set(o.types)
    for members, d, cols, _ in sniffed:
        mixed |= text_in_table(ctx.workflow, ctx.job.table_schema, [n for n, _ in cols])  # the table's text columns
        # numbers of more digits than a double holds, in any file of the group: text (`read_csv.lost_in`)
        doubles, paths = {n for n, t in cols if t == "DOUBLE"} - mixed - set(o.types), [i.path for i in members]
        rows, lines = DETECTION_SAMPLE_ROWS * len(paths), 2 * DETECTION_SAMPLE_ROWS + d.skip + 1
        if ctx.plan.sample_all:  # types detected on whole files: so are these
            rows, lines = None, sys.maxsize
        sample = text_sample(paths, d.delimiter, d.quote, d.escape, d.header, d.skip, d.comment, rows=rows)
        mixed |= lost_in(sniffer, sample, doubles, paths, lines)
    frames = []
    for members, dialect, cols, formats in sniffed:
        cols = [(n, "VARCHAR" if n in mixed else t) for n, t in cols]  # see `mixed_types`
        # a file no bigger than one split is read by one task anyway: read it whole (a quoted value may span lines)
        whole = ctx.plan.whole_files or max(os.path.getsize(i.path) for i in members) <= split_bytes(ctx.spark)
        # read line by line, records counted beside: Spark's types where they are the cast's, bad records dropped
        checked = not whole and not ctx.plan.csv_text and not dialect.comment and dialect.newline in ("\n", "\r\n")
        parsed = (
            _spark_parsed(ctx, cols, formats, o.decimal_separator)
            if checked and not o.all_strings and o.null_values is None
            else {}
        )
        ctx.parsed_doubles |= {n for n, t in parsed.items() if isinstance(t, T.DoubleType)}
        for inp in members:
            if dialect.skip:
                _drop_lines(ctx, inp, dialect.skip)
            inp.line_offset = dialect.skip + (1 if dialect.header else 0)
            inp.dialect, inp.whole, inp.checked = dialect, whole, checked
            # while Spark reads: Spark takes an unclosed quote to the end silently, and line endings of more than
            # one kind past the sample make records merge or split
            inp.scan = pool("quotes").submit(scan, inp.path, dialect, count=checked)
        null = QUOTED_EMPTY_STAYS if o.all_strings or o.null_values is not None else ""
        fields = [T.StructField(n, parsed.get(n, T.StringType()), True) for n, _ in cols]
        if checked:
            modes: dict[str, str] = {"mode": "DROPMALFORMED"}
            if T.DateType() in parsed.values():
                modes |= {"dateFormat": "yyyy-M-d", "enableDateTimeParsingFallback": "false"}
        else:
            fields.append(T.StructField(CORRUPT, T.StringType(), True))
            modes = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
        reader = ctx.spark.read.schema(T.StructType(fields)).options(
            sep=dialect.delimiter,
            quote=dialect.quote or NO_QUOTE,
            escape=dialect.escape or NO_QUOTE,
            header=str(dialect.header).lower(),
            multiLine=str(whole).lower(),
            **modes,
            encoding="UTF-8",
            nullValue=null,
            ignoreLeadingWhiteSpace="false",
            ignoreTrailingWhiteSpace="false",
            enforceSchema="true",
            unescapedQuoteHandling="STOP_AT_DELIMITER",
            lineSep=dialect.newline,  # also keeps a CRLF inside a quoted value as it is
            # every column parsed whatever a query needs: with pruning, whether a record has too few or too many
            # fields depends on the columns asked for, so a later look at the records set aside (their text
            # alone) found none of those the write counted
            columnPruning="false",
        )
        if dialect.comment:
            reader = reader.option("comment", dialect.comment)
        raw = tagged(ctx, reader.csv([i.spark_path for i in members]))
        typed, texts = [], []
        for name, duck in cols:
            text = c(name)
            if o.null_values:
                text = F.when(text.isin(*o.null_values), F.lit(None)).otherwise(text)
            if o.all_strings or duck == "VARCHAR" or name in parsed:
                typed.append(text.alias(name))
                continue
            keep = f"__lf_text{len(ctx.misses)}"  # one name per column of every group: the groups are unioned
            texts.append(text.alias(keep))
            if name in o.types:
                typed.append(declared(text, duck, o).alias(name))
            else:
                typed.append(text_as(text, duck, formats, o.decimal_separator).alias(name))
            ctx.misses[f"miss{len(ctx.misses)}"] = (name, duck, keep)
        frames.append(raw.select(*typed, *texts, *internal(raw)))
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f, allowMissingColumns=True)
    return df


def _spark_parsed(
    ctx: Ctx, cols: list[tuple[str, str]], formats: tuple[str | None, str | None], decimal: str = "."
) -> dict[str, Any]:
    """The columns Spark's CSV reader may parse itself: where every value it takes it reads as the strict cast
    (`casts.text_as`) does, and what it refuses is a record dropped (then read again as text). Doubles (Java's parser
    under both; not with a decimal separator other than `.`, which Java's parser does not read) and dates
    written `yyyy-M-d`. Integers and booleans stay text: Java's parsers take digits of other scripts (`١٢٣`) and
    case-folded letters the cast refuses; so do timestamps: Spark's parser cuts a fraction of more than six
    digits to microseconds, which the cast refuses."""
    datefmt = formats[0]
    corrected = str(ctx.spark.conf.get("spark.sql.legacy.timeParserPolicy", "CORRECTED")).upper() == "CORRECTED"
    out: dict[str, Any] = {}
    for name, duck in cols:
        if duck == "DOUBLE" and decimal == ".":
            out[name] = T.DoubleType()
        elif duck == "DATE" and datefmt == "%Y-%m-%d" and corrected:
            out[name] = T.DateType()
    return out


def split_bytes(spark: Any) -> int:
    """How many bytes of a file one Spark task reads (`spark.sql.files.maxPartitionBytes`, 128 MiB by default)."""
    from landfall.config import parse_size

    return parse_size(str(spark.conf.get("spark.sql.files.maxPartitionBytes", "128MB")))


def unclosed_error(key: str, line: int, quote: str) -> InvalidInput:
    return InvalidInput(
        f"`{key}` line {line}: a quoted value starts on this line and never ends (unterminated quote `{quote}`)",
        file=key,
        line=line,
    )


def _drop_lines(ctx: Ctx, inp: Input, n: int) -> None:
    """Spark cannot skip rows: a copy without the first `n` lines replaces the input."""
    out = os.path.join(ctx.job.scratch_dir, "_spark", "_skip", f"{inp.index}.csv")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with enc._open(inp.path) as src, open(out, "wb") as dst:
        for _ in range(n):
            src.readline()
        shutil.copyfileobj(src, dst, 1 << 20)
    os.remove(inp.spark_path)
    inp.spark_path = inp.spark_path.removesuffix(".gz")
    os.symlink(out, inp.spark_path)


# --- Parquet ----------------------------------------------------------------------------------------------------


def _read_parquet(ctx: Ctx) -> DataFrame:
    raw = ctx.spark.read.option("mergeSchema", "true").parquet(*[i.spark_path for i in ctx.inputs])
    extra = []
    if ctx.batch:
        extra.append(src_index().alias(SRC))
    if ctx.numbered:
        extra.append((F.col("_metadata.row_index") + 1).alias(ROW))
    out = raw.select("*", *extra)
    ctx.raws.append(out)
    return out


def _first_line(path: str) -> bytes:
    return enc.sample(path).split(b"\n", 1)[0]


def _sniff_reason(text: str) -> str:
    if "sniff" in text.lower() or "dialect" in text.lower():
        return "could not detect the CSV dialect (delimiter, quote, columns)"
    return reason(text)
