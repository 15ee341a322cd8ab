"""The engine seam: an engine reads landed files, applies a workflow's steps and writes Parquet files into a
staging folder, with their stats. It never makes them visible: that is the table writer's job
(`landfall.tables`), which is what lets the same workflow run in-process (DuckDB) or on a cluster.

What an engine is given is explicit: a `Job` (the workflow, the landed files as local paths, where to write,
the table's schema and files) and, per attempt, a frozen `ReadPlan` (how to read this time). `Engine.run`
tries the job with the default plan; an engine that finds the input needs another reading (types detected on a
sample that a later row breaks, records too big for its buffer, rows that break rules and need their lines)
raises `Replan` with the changed plan, and the job runs again from the start. Types are Arrow type strings
(`landfall.types`) in both directions: `Job.table_schema` in, `Staged.schema` out.
"""

from __future__ import annotations

import csv
import json
import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import msgspec

from landfall.config import ParquetFiles, Settings, Workflow
from landfall.errors import InvalidInput
from landfall.naming import normalized
from landfall.schema import field_named


def detected_format(workflow: Workflow, key: str, path: str) -> str | None:
    """The format a local file's content tells where its name or the workflow's `format: json` would mislead, or
    None: `jsonl` for JSON Lines named `.json` (the format not declared), or read with `format: json` whatever
    their name (Spark, Athena and Firehose call JSON Lines JSON), told by the whole lines of its first 64 KB being
    two or more JSON objects, one per line. (A JSON document is one value: its first line alone is never a whole
    object followed by another.)"""
    from landfall import compression
    from landfall import encoding as enc

    opts = workflow.read
    named_json = compression.strip_suffix(key.lower()).endswith(".json")
    if opts.format not in (None, "json") or (opts.format is None and not named_json):
        return None
    try:
        head = enc.sample(path, compression.detect(path, opts.compression, key), key)
    except Exception:  # unreadable here (gone, a bad archive, ...): the engine's read says why, naming the file
        return None
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if len(head) >= enc.SAMPLE:
        text = text[: text.rfind("\n") + 1]  # the last line may be cut short
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    for line in lines:
        try:
            if not isinstance(json.loads(line), dict):
                return None
        except (ValueError, RecursionError):
            return None
    return "jsonl"


# Python's csv module refuses fields over 128 KiB; the engines' readers take lines up to 2 MB (or
# `read.max_line_size`), so the checks that walk a file with it (record lines, diagnoses) take any field
csv.field_size_limit(2**31 - 1)


def csv_quoting(quote: str, escape: str) -> dict[str, Any]:
    """`csv.reader`'s quoting arguments for a dialect's quote and escape characters (`""`: none)."""
    if not quote:
        return {"quoting": csv.QUOTE_NONE}
    doubled = escape in (quote, "")
    return {"quotechar": quote, "doublequote": doubled, "escapechar": None if doubled else escape}


_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+")


def text_hint(column: str | None, value: str | None, cast_in: str = "a step before this one") -> str:
    """What a message adds when a step (or a rule) took a text column for a number: a number written with a
    decimal comma is read as one with `decimal_separator`; other text is cast in a step before (`cast_in`), or
    declared. `""` when there is nothing useful to say."""
    name = f"`{column}`" if column else "the column"
    shown = f" (`{value}`)" if value is not None else ""
    if value is not None and _DECIMAL_COMMA.fullmatch(value.strip()):
        read = '`read: {decimal_separator: ","}`'
        return f"; {name} is text here{shown}: numbers written with a decimal comma are read as numbers with {read}"
    if column is None:
        return ""
    missing = ""
    if value is not None and value.strip() and not any(ch.isdigit() for ch in value):  # `n/a`, `-`, `none`
        missing = f"if `{value}` means no value, `read: {{null_values: [{json.dumps(value)}]}}`; else "
    return (
        f"; {name} is text here{shown}: {missing}cast it in {cast_in} (`cast: {{{column}: double}}`) "
        f"or declare its type (`read: {{types: {{{column}: double}}}}`)"
    )


def rule_named(rule: Any) -> str:
    """A rule as messages name it: `rule `positive` (`amount > 0`)` (an `expect` shows its SQL, unless its label
    is that SQL)."""
    shown = f" (`{rule.expect}`)" if getattr(rule, "kind", "") == "expect" and rule.name else ""
    return f"rule `{rule.label}`{shown}"


def rule_expressions(rule: Any) -> list[str]:
    """The SQL a rule holds (an `expect`'s), for finding the columns it names."""
    return [rule.expect] if getattr(rule, "kind", "") == "expect" and rule.expect else []


def where_in(key: str, line: int | None, fmt: str | None) -> str:
    """A place in a landed file as messages name it: `key` and the line a text file's record starts on, or a
    Parquet file's row (its record's position in the file, from 1)."""
    return f"`{key}`" + (f" {'row' if fmt == 'parquet' else 'line'} {line}" if line else "")


def flat_collision(paths: list[list[str]], separator: str, *, explode: bool = False) -> str | None:
    """Why `flatten` (or `explode`, whose object elements become `<column>_<field>`) cannot name its columns, when
    two of them (`paths`: each column's keys from the top, one for a column left as it is) join to one name (names
    ignore case): with `_`, `{"a": {"b": 1}, "a_b": 2}` makes `a_b` twice. Numbering the second would put `a_b` of
    one file and `a.b` of another in one column."""
    seen: dict[str, list[str]] = {}
    for path in paths:
        name = separator.join(path)
        if (other := seen.setdefault(name.lower(), path)) != path:
            fix = "" if explode else 'choose a `separator` that no key holds (`flatten: {separator: "__"}`), or '
            return f"`{'.'.join(other)}` and `{'.'.join(path)}` would both be column `{name}`: {fix}rename one first"
    return None


def named_in(column: str, expressions: list[str]) -> bool:
    """Whether SQL `expressions` name `column` (as a word, or quoted)."""
    word = re.compile(rf"(?<![\w.\"]){re.escape(column)}(?![\w\"])", re.IGNORECASE)
    return any(f'"{column}"' in e or word.search(e) for e in expressions)


def text_in_table(workflow: Workflow, table_schema: list[tuple[str, str]] | None, names: list[str]) -> set[str]:
    """The columns of a file (`names`) that its table holds as text (`read.types` aside), followed through the
    workflow's leading `rename` and `normalize_names` steps: read as text, as another type a value would reach the
    table in that type's words (`f` as `false`, `8.50` as `8.5`)."""
    text = {n for n, t in table_schema or [] if t in ("string", "large_string")}
    if not text:
        return set()
    now = in_table(workflow, table_schema, names)
    return {f for f, c in now.items() if c in text and f not in workflow.read.types}


def in_table(workflow: Workflow, table_schema: list[tuple[str, str]] | None, names: list[str]) -> dict[str, str]:
    """A file's columns (`names`) and the names they reach the table by, followed through the workflow's leading
    `rename` and `normalize_names` steps."""
    now = {n: n for n in names}  # a file's column -> its name after the steps so far
    for step in workflow.transform:
        if step.kind == "rename":
            now = {f: step.rename.get(c, c) for f, c in now.items()}
        elif step.kind == "normalize_names":
            mapping = normalized(list(now.values()), [n for n, _ in table_schema or []])
            now = {f: mapping.get(c, c) for f, c in now.items()}
        else:
            break
    return now


def names_its_table(workflow: Workflow, table_schema: list[tuple[str, str]] | None, names: list[str]) -> bool:
    """Whether a file's column names (`names`) are columns of its table (through the workflow's leading renames),
    whatever their case: a line of them is a header."""
    table = [n for n, _ in table_schema or [] if n not in LINEAGE]
    return bool(table) and all(field_named(table, c) for c in in_table(workflow, table_schema, names).values())


LINEAGE = ("_source_file", "_ingested_at", "_run_id")  # the columns landfall adds to every row
JOINED_HIDDEN = (*LINEAGE, "_upstream_source_file", "_upstream_run_id")


def not_in_output(workflow: Workflow, what: str, missing: list[str], names: list[str]) -> InvalidInput:
    """A workflow's `write` names columns its output lacks (`what`: `partition column`, `merge column`): the
    columns there are, and for a field of a struct column (`customer.country`), the step that makes it a column."""
    text = (
        f"workflow `{workflow.name}`: {what} {', '.join(f'`{m}`' for m in missing)} is not in the output; columns "
        "are " + ", ".join(f"`{n}`" for n in names)
    )
    for m in missing:
        head = m.split(".", 1)[0]
        if "." in m and head in names:
            column = m.replace(".", "_")
            text += (
                f"; `{m}` is a field of `{head}`: make it a column in a step "
                f'(`compute: {{{column}: "{m}"}}`) and name that'
            )
    return InvalidInput(text)


def untyped_times(workflow: Workflow, nulls: set[str], table: dict[str, str]) -> list[str]:
    """Of the columns a time partition (`year(ts)`) takes that hold no value here but have a type (`nulls`: text,
    for a CSV column of empty fields; JSON nulls have none, and take a later file's), those neither the table
    (`table`: its types) nor the workflow (`read.types`, `schema.hints`) types: the engine writes each as a
    timestamp, as its partitions say it is. Written as text, the table would hold it so, and a later file's dates
    there would be text too, which the partition refuses."""
    declared = workflow.declared()
    return [n for n in sorted(nulls) if table.get(n, "null") == "null" and n.lower() not in declared]


def not_a_time(
    workflow: Workflow, function: str, column: str, kind: str, value: Any, in_table: bool = False
) -> InvalidInput:
    """A time partition (`year(ts)`) of a column that holds no dates or timestamps: what it holds, and the step;
    `in_table`: the type is the table's (its earlier files made it so), which a step alone does not change."""
    shown = f" (`{value}`)" if value is not None else ""
    make = (
        f"make it one: `read: {{types: {{{column}: timestamp}}}}` (with `read.timestamp_format` for a form of your "
        f"own) or a step `cast: {{{column}: timestamp}}`"
    )
    if in_table:
        table = workflow.write.table
        return InvalidInput(
            f"workflow `{workflow.name}`: partition `{function}({column})` takes a date or a timestamp, but table "
            f"`{table}` holds `{column}` as {kind}{shown}, as its earlier files made it; {make}, and load the table "
            f"again: `landfall tables reload {table}`"
        )
    return InvalidInput(
        f"workflow `{workflow.name}`: partition `{function}({column})` takes a date or a timestamp, but `{column}` is "
        f"{kind} here{shown}; {make}"
    )


def refuse_lineage_names(columns: Any) -> None:
    """Rows about to get their lineage columns already hold a column of one of those names (the landed file's own,
    e.g. an export of another lake's table, or a `compute`): its values would be overwritten, or dropped with
    `lineage: false`. `InvalidInput` saying how to keep them."""
    if clash := [c for c in LINEAGE if c in columns]:
        named = ", ".join(f"`{c}`" for c in clash)
        renames = ", ".join(f"{c}: {c.lstrip('_')}" for c in clash)
        if len(clash) == 1:
            what, it, its = f"column {named} has the name of a lineage column", "it", "its"
        else:
            what, it, its = f"columns {named} have the names of lineage columns", "them", "their"
        raise InvalidInput(
            f"{what} landfall adds to every row, so {its} values would be lost; rename {it} in a transform step "
            f"(`- rename: {{{renames}}}`) or drop {it} (`- drop: [{', '.join(clash)}]`)"
        )


class Source(msgspec.Struct):
    """One landed file version in a job."""

    key: str  # landing key, e.g. `sales/2024-01.csv`; becomes `_source_file`
    path: str  # what the engine opens (a local path or URL)
    run_id: str
    file_id: int
    size: int = 0
    format: str | None = None  # the format its content told (`detected_format`); None: the workflow's or the name's


class Job(msgspec.Struct):
    """One engine job: a workflow over a batch of landed files. Every path is local."""

    workflow: Workflow
    sources: list[Source]
    staging: str  # folder the engine writes into (local path)
    commit_id: str  # names the output files: `part-<commit_id>-<n>.parquet`
    ingested_at: datetime
    scratch: str = ""  # a local folder for the engine's temporary files (transcoded copies); "" : `staging`
    table_schema: list[tuple[str, str]] | None = None  # the table's schema (Arrow types), when it exists
    table_files: list[tuple[str, str]] = []  # (absolute path, path in table)
    partition_names: list[str] = []  # the table's partition columns
    child_staging: dict[str, str] = {}  # child table -> folder its files go into
    child_schemas: dict[str, list[tuple[str, str]]] = {}  # child tables that exist
    tables: dict[str, tuple[Any, list[str]]] = {}  # tables `sql` steps join: name ->
    # (the catalog's `Table`, its files as listed when the run started: the version the run reads)
    # Arrow types the table format cannot hold -> the type to write instead (`TableWriter.stored_as`)
    stored_as: dict[str, str] = {}
    # `on_change: replace`: the batch's landed files (those with no rows too), whose earlier versions' rows this
    # commit takes out of the table: a merge leaves them out of the files it rewrites, `unique` against the
    # table does not count them
    replacing: list[str] = []

    def replaced_rows(self) -> list[str]:
        """`replacing`, when the table has the lineage that finds those rows (`_source_file`)."""
        return self.replacing if "_source_file" in dict(self.table_schema or []) else []

    @property
    def scratch_dir(self) -> str:
        return self.scratch or self.staging


class ReadPlan(msgspec.Struct, frozen=True):
    """How an engine reads a job's files on one attempt. The defaults are the fast reading; each field is a
    decision the input forced on an earlier attempt (see `Replan`)."""

    number_rows: bool = False  # number records as read: rows that break rules are named by their lines
    sample_all: bool = False  # detect column types on whole files, not a sample (a later row broke them)
    as_text: frozenset[str] = frozenset()  # columns read as text: their values have mixed forms
    mixed_stamps: frozenset[str] = frozenset()  # timestamp columns past whose sample a value of another form came:
    # read as text and converted in each form a timestamp is written in (`read_csv.dates_in`)
    column_types: tuple[tuple[str, str], ...] = ()  # (column, Arrow type) read as a wider type than a sample
    # gave: a later value did not fit it (`double` for a number too large for an integer column)
    per_file_types: bool = False  # detect each file's types (a file of a batch broke the first file's)
    json_via_python: bool = False  # a valid JSON document the engine's reader refused: Python's parser reads it
    split_lines: bool = False  # JSON Lines with `bad_rows: quarantine`: lines that do not parse are set aside
    # JSON Lines with a key twice in one object (which DuckDB's reader refuses): read from a copy (`split_lines`)
    # where such a record is written with the last value of each key; without quarantine, a bad line fails
    repeated_keys: bool = False
    # JSON Lines whose records hold the empty key (DuckDB's reader takes such an object for a MAP, no record): read
    # from a copy (`split_lines`) where that key is named `jsontext.EMPTY_KEY`
    empty_keys: bool = False
    max_object: int = 0  # bytes of the largest record the reader must hold (0: the engine's default)
    whole_files: bool = False  # read each file whole, not split for parallel readers (a CSV value spans lines)
    quoted: bool = False  # CSV read with RFC 4180 quotes (`"`) though none was in the sample the dialect came from
    csv_text: bool = False  # CSV read as text with every record checked (a record the typed reading dropped)
    newlines: bool = False  # CSV read from a copy whose line endings are all LF (one past the sample differed)
    # CSV read from a copy whose lines repeating its header line are blank (files put together, `cat *.csv`): the
    # reader passes blank lines over, and every other line keeps its number
    header_lines: bool = False
    # JSON Lines read from a copy where each field holding a number beyond a double's range is text (Spark's parser
    # takes `1e400` for an infinity and never gives its text back)
    beyond_double: bool = False

    def but(self, **changes: Any) -> ReadPlan:
        """This plan with some decisions changed."""
        return msgspec.structs.replace(self, **changes)

    def typed(self, column: str, arrow_type: str) -> ReadPlan:
        """This plan, reading `column` as `arrow_type`."""
        kept = tuple((c, t) for c, t in self.column_types if c != column)
        return msgspec.structs.replace(self, column_types=(*kept, (column, arrow_type)))


class Replan(Exception):  # noqa: N818 - a signal to `Engine.run`, not an error
    """The job must be read again with `plan` (raised by an engine's `attempt`)."""

    def __init__(self, plan: ReadPlan, why: str = "") -> None:
        super().__init__(why or "read again")
        self.plan = plan


# Each decision is taken at most once per column or kind, so plans cannot cycle; a file of many columns may need
# a decision for each (every column of a file whose header line repeats further down met a value that is no
# number). Reading stops when a plan comes back, or after this many reads (a bug, then: said so).
MAX_ATTEMPTS = 1000


class StagedFile(msgspec.Struct):
    path: str  # absolute path in the staging folder
    relpath: str  # path relative to the staging folder (`year=2024/part-...parquet`)
    rows: int
    bytes: int
    partition: dict[str, str] = {}
    stats: dict[str, Any] = {}


class Replayed(msgspec.Struct):
    """What checking quarantined rows again produced (`Engine.replay`)."""

    files: list[StagedFile]  # the rows that pass now, for the table
    quarantine: list[StagedFile]  # the rest, written back for the quarantine
    replaced: list[str]  # table files a merge table's rewrite replaces (paths in the table)
    passed: int
    kept: int


class Staged(msgspec.Struct):
    """What an engine produced for a job."""

    files: list[StagedFile]
    schema: list[tuple[str, str]]
    rows_in: dict[str, int]  # by source key
    rows_out: dict[str, int]
    file_sources: list[tuple[str, str, int]]  # (relpath, source key, rows)
    steps: list[dict[str, Any]] = []  # [{"step": ..., "seconds": ...}]
    replaced: list[str] = []  # table files (relative) the output supersedes (merge)
    arrow_schema: Any = None  # pyarrow.Schema of the output, partition columns included (None: from `schema`)
    outputs_of: dict[str, set[str]] = {}  # source key -> files holding its rows
    quality: dict[str, Any] = {}  # rule label -> {action, violations}
    quarantine_files: list[StagedFile] = []  # rows set aside, for quarantine/<table>
    quarantine_schema: list[tuple[str, str]] = []
    children: dict[str, Staged] = {}  # child table -> its rows (`child_tables`)
    notes: dict[str, str] = {}  # source key -> a note for its run (e.g. an empty file)
    # source key -> the text encoding it was read in: {encoding, confidence, how} (`landfall.encoding.Detected`)
    encodings: dict[str, dict[str, Any]] = {}

    def pyarrow_schema(self) -> Any:
        """The output's `pyarrow.Schema` (for a table format that records one): `arrow_schema`, or made from
        `schema` (pyarrow is imported only here, only when a format asks)."""
        if self.arrow_schema is None:
            import pyarrow as pa

            from landfall.types import parse_type

            self.arrow_schema = pa.schema([pa.field(n, parse_type(t)) for n, t in self.schema])
        return self.arrow_schema


class Engine(ABC):
    """Runs a workflow's read/transform/write on a batch of files."""

    name: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """The engine set up from `landfall.yaml` (its own section, if it has one)."""
        return cls()

    def run(self, job: Job) -> Staged:
        """Read every source, transform, write Parquet into `job.staging`, changing the read plan as often as
        the input asks (`Replan`). Raises `InvalidInput` naming the file, line and reason when input is bad.
        Files with no records (`empty_note`: empty, blank, a header alone) are left out: they load nothing and
        change no schema."""
        empty = {s.key: f"nothing to load: {note}" for s in job.sources if (note := self.empty_note(s, job))}
        if not empty:
            return self._run_planned(job)
        rest = [s for s in job.sources if s.key not in empty]
        staged = self._run_planned(msgspec.structs.replace(job, sources=rest)) if rest else Staged([], [], {}, {}, [])
        for key in empty:
            staged.rows_in[key] = staged.rows_out[key] = 0
        staged.notes.update(empty)
        return staged

    def empty_note(self, src: Source, job: Job) -> str | None:
        """Why a landed file holds no records, or None (the engine reads it). Raises `InvalidInput` for a file
        that cannot be read at all (a text format's file that is not text, a damaged Parquet file)."""
        return None

    def _run_planned(self, job: Job) -> Staged:
        plan, tried, why = ReadPlan(), set(), ""
        while len(tried) < MAX_ATTEMPTS:
            tried.add(plan)
            try:
                return self.attempt(job, plan)
            except Replan as again:
                why = str(again)
                if again.plan in tried:
                    break
                plan = again.plan
        keys = ", ".join(f"`{s.key}`" for s in job.sources[:3])
        raise InvalidInput(
            f"{keys}: read {len(tried)} times without settling how to read it (a landfall bug: please report it with"
            f" the file); the last read ended so: {why}"
        )

    @abstractmethod
    def attempt(self, job: Job, plan: ReadPlan) -> Staged:
        """One attempt at `run`: read with `plan`; raise `Replan` to be called again with another plan."""

    @abstractmethod
    def rewrite(
        self,
        files: list[tuple[str, str]],
        exclude_keys: list[str],
        staging: str,
        commit_id: str,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        """Copy table files `(absolute path, path in the table)` into staging without the rows of
        `exclude_keys` (landed files replaced by a new version); each copy keeps its partition folder and is
        written as `files_as` says (the table's `write.compression` and `write.parquet_version`)."""

    @abstractmethod
    def compact(
        self,
        files: list[tuple[str, str]],
        staging: str,
        commit_id: str,
        target_file_size: int,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        """Rewrite files of one partition `(absolute path, path in table)` into few large ones, written as
        `files_as` says (the table's `write.compression` and `write.parquet_version`)."""

    @abstractmethod
    def replay(self, job: Job, files: list[str], run_id: str | None) -> Replayed:
        """Check quarantined rows again with the workflow's rules. Into a merge table the rows that pass are
        merged by key as loaded when their file was (`_ingested_at`): the greatest `order_by`, then the later
        load, wins."""

    @abstractmethod
    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        """For table files: how many rows of each landed file (`_source_file`) each holds."""

    def use_storage(self, storage: Any) -> None:
        """Let the engine read files of a `landfall.storage.Storage` by URL (table files on an object store);
        landed files always come as local paths."""

    def close(self) -> None:
        """Release resources."""
