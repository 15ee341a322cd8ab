"""One workflow: which files (or which table's runs) it takes, and its read, transform, validate, write and
retry settings, with the checks that span them."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from landfall.config.common import size_text
from landfall.config.engines import known_engine
from landfall.config.model import Context, Model, at
from landfall.config.rules import Rule, SchemaPolicy
from landfall.config.steps import ROW_WISE, NormalizeNames, ReadOptions, Step, StepModel, steps_before
from landfall.config.writing import WriteOptions
from landfall.sqlcheck import tables_of


class RetryPolicy(Model, kw_only=True):
    max_attempts: Annotated[int, Meta(ge=1)] = 3
    backoff_seconds: Annotated[float, Meta(ge=0)] = 1.0
    max_backoff_seconds: Annotated[float, Meta(ge=0)] = 300.0
    jitter: Annotated[float, Meta(ge=0, le=1)] = 0.2


class TableSource(Model, kw_only=True):
    """A workflow fed by a table: each run that writes rows into `table` becomes one run of this workflow, over
    the rows that run wrote (by their `_run_id`), as the table holds them when this run starts."""

    table: str


TABLE_EVENTS = "_tables/"  # `_tables/<table>/<run id>`: the events of a table's runs (never a landed file)


class Workflow(Model, kw_only=True):
    """One workflow: which files it takes, how it reads, reshapes and writes them."""

    name: str
    match: str = ""  # a prefix or glob under the landing zone; or `source`
    source: TableSource | None = None  # instead of `match`: fed by the runs that write a table
    read: ReadOptions = msgspec.field(default_factory=ReadOptions)
    transform: list[Step] = []
    write: WriteOptions
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    validate_: list[Rule] = msgspec.field(default_factory=list, name="validate")
    schema_: SchemaPolicy = msgspec.field(default_factory=SchemaPolicy, name="schema")
    normalize_names: bool = False
    lineage: bool = True
    on_change: Literal["replace", "append"] = "replace"
    batch: bool | None = None  # None: batch small files when every step is row-wise
    engine: str | None = None  # None: the file's `engine`; `duckdb`, `spark`, `auto` (or a registered engine)
    spark_above: str | None = None  # with `engine: auto`; None: the file's `spark_above`

    _short_forms = {"transform": steps_before}  # YAML's `- rename: {...}` items as tagged steps

    def declared(self) -> set[str]:
        """The columns `read.types` or `schema.hints` give a type, in lowercase (a name matches whatever its case)."""
        return {c.lower() for c in [*self.read.types, *self.schema_.hints]}

    def steps(self) -> list[tuple[str, StepModel]]:
        """The steps an engine applies, in order (`normalize_names: true` first), each with the name messages
        give it: ``workflow `sales` step 2 (`compute`)``."""
        steps = [NormalizeNames(normalize_names=True)] if self.normalize_names else []
        steps += self.transform
        return [(f"workflow `{self.name}` step {i + 1} (`{step.kind}`)", step) for i, step in enumerate(steps)]

    def _check(self, context: Context) -> None:
        with at("engine"):
            if self.engine is not None:
                known_engine(self.engine)
        with at("spark_above"):
            size_text(self.spark_above)
        if self.source is None:
            if not self.match:
                raise ValueError("a workflow needs `match` (which landed files it takes) or `source: {table: ...}`")
            if self.match.startswith(("/", "./")):  # no landed file's key starts so
                with at("match"):
                    raise ValueError(
                        f"`{self.match}` would take no file: `match` is a prefix (or glob) of the keys under the "
                        f"landing zone, which start with neither `/` nor `./`: write `{self.match.lstrip('./')}`"
                    )
        else:
            if self.match:
                raise ValueError("`match` or `source`, not both: a workflow fed by a table takes no landed files")
            self.match = f"{TABLE_EVENTS}{self.source.table}/"  # its runs' keys: `_tables/<table>/<run id>`
            self.read.format = "parquet"  # the rows are handed over as Parquet
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

    @property
    def replaces_versions(self) -> bool:
        """Whether a file's new version replaces its earlier versions' rows (`on_change: replace`)."""
        return self.on_change == "replace"

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
    def child_sources(self) -> dict[str, str]:
        """Child table name -> the top-level list column of the file its rows come from (a message names it)."""
        return {t: c.partition(".")[0] for c, t in self.child_tables.items()}

    @property
    def joins(self) -> list[str]:
        """The tables its `sql` steps join (read at the version current when a run starts)."""
        return sorted({t for step in self.transform if step.kind == "sql" for t in tables_of(step.sql)})

    @property
    def judges_rows(self) -> bool:
        """Whether rules (`validate`, or `schema.evolution: discard_row`) judge each row: they report and set aside
        rows by their line in one file."""
        return bool(self.validate_) or self.schema_.evolution == "discard_row"

    @property
    def in_order(self) -> bool:
        """Whether its files must commit in the order they landed, one job at a time: what a job writes depends on
        the table's rows (`overwrite`: the newest file is the table, or its partitions; `merge`: a later file wins a
        tie; `unique` against the table: the first file keeps the key), so jobs run at once would leave whichever
        committed last."""
        return self.write.mode in ("overwrite", "merge") or self.unique_against_table

    @property
    def unique_against_table(self) -> bool:
        """Whether a `unique` rule looks for its keys in the table's rows too."""
        return any(r.unique is not None and r.unique.against_table for r in self.validate_)

    @property
    def batchable(self) -> bool:
        if self.write.landing is not None or self.source is not None:
            return False  # one file out per file in; one upstream run at a time
        if self.write.mode == "overwrite":
            return False  # each file is the whole table (or its partitions) on its own
        if not self.lineage:
            return False  # a batch's rows are told apart by `_source_file`
        if self.judges_rows:
            return False  # rules report and quarantine rows by their line in one file
        if self.schema_.evolution == "freeze":  # each file is held to the table's columns: in a batch, one
            return False  # lacking a column another has would pass
        if self.batch is not None:
            return self.batch
        return all(step.kind in ROW_WISE for step in self.transform)
