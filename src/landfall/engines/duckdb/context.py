"""The per-attempt state of one DuckDB job, declared in one place and passed to every part of the engine."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import duckdb
import msgspec

from landfall.config import ReadOptions
from landfall.engines.base import Job, ReadPlan, Source
from landfall.engines.duckdb.sql import PATH, ROW, _step_error, q
from landfall.engines.duckdb.types import arrow_type

_MADE_COLUMNS = (
    "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'temp' AND table_name = ? "
    "ORDER BY column_index"
)


class JobContext(msgspec.Struct):
    """One attempt at one job: the job, how to read it (`plan`), the connection, and what reading found.

    Made for each attempt by `DuckDBEngine.attempt` and passed explicitly to reading, steps, quality and
    writing; nothing of a job is kept on the engine between attempts or jobs. The temp views and tables it
    makes are dropped by `drop()`.
    """

    con: duckdb.DuckDBPyConnection
    job: Job
    plan: ReadPlan
    fmt: str = ""  # csv | jsonl | json | parquet
    paths: dict[str, Source] = {}  # path read (maybe a transcoded copy) -> landed file
    with_path: bool = True  # rows carry their file's path (batches); a single file's lineage is constants
    line_offset: int = 0  # add to a record's position to get its line (the header, skipped rows)
    bad_lines: list[tuple[str, int | None, str, str, str | None]] = []  # set aside: (path, line, raw, why, column)
    aside: list[str] = []  # temp tables of rows set aside after parsing: (path, _line, _raw, _reason, _column)
    gone_lines: list[int] = []  # lines of the one file read that hold no record
    starts: str | None = None  # table of the line each record starts on ("" when every record is one line)
    line_counts: Future[dict[str, int]] | None = None  # JSON Lines records per file, counted while reading
    raw: str = ""  # the view of the rows as read
    records: bool = True  # JSON read as records (columns from their keys), not as `value` rows
    as_lines: str = ""  # a JSON document Python's parser read, as JSON Lines (`ReadPlan.json_via_python`)
    keys_refused: bool = False  # JSON read with DuckDB's own detection, which refuses a key past its sample
    # ... whose types it casts a value of another kind into: the columns with number or boolean leaves, looked
    # through after the load (`jsonkinds.late_kinds`)
    kinds_unchecked: dict[str, str] = {}
    children: dict[str, str] = {}  # child table -> the view of its rows
    dialects: dict[str, tuple[str, int]] = {}  # CSV path -> (delimiter, lines before the records) landfall checked
    timestamp_format: str | None = None  # the reader's strict format of CSV timestamps (`read_csv.dates_in`)
    stamp_forms: dict[str, tuple[str, ...]] = {}  # CSV timestamp columns read as text and converted in these forms
    # the CSV read's columns, each of whole numbers (read as text, converted: `read_csv.wholes_back`) -> its type
    wholes: dict[str, str] = {}
    # in a file of more of them than `read_csv.WHOLES_AT_MOST`, read as DuckDB converts them: each -> its type,
    # looked through after the load (`read_csv.late_wholes`) in `wholes_as_text`, the files with them as text
    late_wholes: dict[str, str] = {}
    wholes_as_text: str = ""
    # columns the reader parses as dates or times, each with the SQL over `dates_as_text` (the files with them as
    # text) that finds a word a date cast takes in it: past the type sample, one may hide (`datewords`)
    read_dates: dict[str, str] = {}
    dates_as_text: str = ""
    read_doubles: set[str] = set()  # those of `read_dates` the reader parses as numbers (doubles), not dates
    nested_doubles: frozenset[str] = frozenset()  # and those whose leaves are doubles in objects or lists
    # each of `read_dates` -> the column the steps write its values to unchanged, or the prefix (`True`) of those
    # flattened out of it; None where a step may change them (`datewords.follow`); unset: its own name
    date_names: dict[str, tuple[str, bool] | None] = {}
    # landed key -> the encoding it was read in: {encoding, confidence, how} (see `landfall.encoding.Detected`)
    encodings: dict[str, dict[str, object]] = {}
    notes: dict[str, str] = {}  # source key -> a note for its run
    views: list[str] = []
    tables: list[str] = []
    described: dict[str, list[tuple[str, str]]] = {}
    sniffed: dict[tuple[str, ...], Any] = {}  # sniff_csv rows; ("as-written", ...): `read_csv.as_written`
    made: int = 0

    @property
    def opts(self) -> ReadOptions:
        return self.job.workflow.read

    @property
    def only_key(self) -> str:
        return self.job.sources[0].key

    def csv_delimiter(self, path: str) -> str | None:
        """The delimiter of a CSV being read: declared, or checked by landfall (None: DuckDB's sniffer's)."""
        return self.opts.delimiter or self.dialects.get(path, (None, 0))[0]

    # --- temp views and tables --------------------------------------------------------------------------------

    def view(self, select: str) -> str:
        """A temp view of `select` (dropped after the attempt)."""
        return self._temp("VIEW", select, self.views)

    def named_view(self, name: str, select: str) -> str:
        """A temp view under a name of the caller's (a joined table's; dropped after the attempt)."""
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {select}")
        self.views.append(q(name))
        return name

    def table(self, select: str) -> str:
        """A temp table holding the rows of `select` (dropped after the attempt)."""
        return self._temp("TABLE", select, self.tables)

    def table_of(self, columns: dict[str, tuple[str, list[Any]]]) -> str:
        """A temp table of `columns` (name -> (pyarrow type name, values)), made from Arrow in one statement
        (`executemany` costs about half a millisecond a row)."""
        import pyarrow as pa

        data = pa.table({n: pa.array(values, getattr(pa, kind)()) for n, (kind, values) in columns.items()})
        self.made += 1
        view = f"__lf_arrow{self.made}"
        self.con.register(view, data)
        try:
            return self.table(f"SELECT * FROM {view}")
        finally:
            self.con.unregister(view)

    def _temp(self, kind: str, select: str, made: list[str]) -> str:
        self.made += 1
        name = f"__lf_{kind[0].lower()}{self.made}"
        statement = f"CREATE OR REPLACE TEMP {kind} {name} AS {select}"
        found = len(self.con.extract_statements(statement))
        if found != 1:  # workflow SQL is one query or expression: never a `;` and a statement after it
            raise _step_error(f"expected one SQL statement; found {found} (separated by `;`)")
        self.con.execute(statement)
        made.append(name)
        return name

    def drop(self) -> None:
        for name in reversed(self.views):
            try:
                self.con.execute(f"DROP VIEW IF EXISTS {name}")
            except duckdb.Error:
                pass
        for name in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.views, self.tables, self.described = [], [], {}
        self.con.execute("DROP TABLE IF EXISTS __lf_sources")

    # --- what a view holds ------------------------------------------------------------------------------------

    def describe(self, view: str) -> list[tuple[str, str]]:
        """Columns and DuckDB types of a view; remembered, as a view never changes once made. Those of a view or
        table made here are the ones its creation bound, from the catalog: DESCRIBE binds the view again, which
        for a read detecting types on whole files (`ReadPlan.sample_all`) is another pass over them."""
        if view not in self.described:
            made = view in self.views or view in self.tables
            found = self.con.execute(_MADE_COLUMNS, [view]).fetchall() if made else []
            found = found or self.con.execute(f"DESCRIBE {view}").fetchall()
            self.described[view] = [(r[0], r[1]) for r in found]
        return self.described[view]

    def schema(self, view: str) -> list[tuple[str, str]]:
        """Columns and their neutral (Arrow) types, as the catalog holds them."""
        return [(n, arrow_type(t)) for n, t in self.describe(view)]

    def columns(self, view: str) -> list[str]:
        """The view's data columns (without the internal path and row-number columns)."""
        return [c for c, _ in self.describe(view) if c not in (PATH, ROW)]
