"""`Settings`: the whole of `landfall.yaml`, its checks across sections, and where each zone resolves to."""

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from landfall.config.common import parse_size
from landfall.config.engines import DuckDBSettings, SparkSettings, known_engine
from landfall.config.model import Context, Model, at, parse
from landfall.config.serve import AlertSettings, ServeSettings
from landfall.config.streams import StreamConfig
from landfall.config.workflow import Workflow
from landfall.config.writing import PartitionColumn
from landfall.config.zones import StorageSettings, Zones, zone_url
from landfall.errors import ConfigError
from landfall.sources.settings import SourceConfig


class Settings(Model, dict=True, kw_only=True):
    """The whole of `landfall.yaml`."""

    lake: str = "./lake"
    zones: Zones = msgspec.field(default_factory=Zones)
    state_url: str | None = None
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    scratch_dir: str | None = None  # local folder for temporary files (copies of remote files); default: system temp
    workers: Annotated[int, Meta(ge=1, le=64)] = 2  # worker threads per process
    # worker processes `up` and `worker` start on this host (1: in-process)
    processes: Annotated[int, Meta(ge=1, le=64)] = 1
    sources: list[SourceConfig] | None = None  # event sources of `up`; default: see `intake`
    batch_files: Annotated[int, Meta(ge=1)] = 500
    batch_bytes: str = "64MB"
    lease_seconds: Annotated[float, Meta(gt=0)] = 30.0
    # a file whose worker dies this many times while loading it goes to the dead-letter list
    max_interruptions: Annotated[int, Meta(ge=1)] = 3
    reconcile_seconds: Annotated[float, Meta(gt=0)] = 5.0
    settle_seconds: Annotated[float, Meta(ge=0)] = 1.0
    compaction_seconds: Annotated[float, Meta(gt=0)] = 10.0  # how often `up` looks for tables to compact
    engine: str = "duckdb"  # what runs workflows that do not say: an engine from `landfall.registry`, or `auto`
    duckdb: DuckDBSettings = msgspec.field(default_factory=DuckDBSettings)
    spark_above: str = "2GB"  # `engine: auto`: batches bigger than this run on Spark
    spark: SparkSettings = msgspec.field(default_factory=SparkSettings)
    workflows: list[Workflow] = []
    streams: list[StreamConfig] = []
    stream_log_dir: str | None = None  # local folder of the streams' segment logs; default `<state zone>/streams`
    serve: ServeSettings = msgspec.field(default_factory=ServeSettings)
    alerts: list[AlertSettings] = []
    alert_check_seconds: Annotated[float, Meta(gt=0)] = 5.0  # how often alerts look at the state store

    # where the settings came from, for messages and for resolving relative paths (set by `load_settings`; not
    # keys of landfall.yaml)
    source: ClassVar[str] = "<defaults>"
    base_dir: ClassVar[str] = "."

    def _check(self, context: Context) -> None:
        with at("lake"):
            zone_url(self.lake)
        with at("engine"):
            known_engine(self.engine)
        names = [w.name for w in self.workflows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"workflow names must be unique; repeated: {', '.join(f'`{d}`' for d in dupes)}")
        fed = [w.source.table for w in self.workflows if w.source is not None]
        if twice := sorted({t for t in fed if fed.count(t) > 1}):
            both = [w for w in self.workflows if w.source is not None and w.source.table == twice[0]]
            names = [f"`{w.name}`" for w in both]
            raise ValueError(
                f"workflows {', '.join(names[:-1])} and {names[-1]} are both fed by table `{twice[0]}`; a table "
                f"feeds one workflow: feed {names[1]} from the table {names[0]} writes instead "
                f"(`source: {{table: {both[0].write.table or both[0].name}}}`)"
            )
        matches = [w.match for w in self.workflows]
        same = sorted({m for m in matches if matches.count(m) > 1})
        if same:
            raise ValueError(
                f"two workflows have the same `match` {', '.join(f'`{m}`' for m in same)}; "
                "a file must have one most specific workflow"
            )
        self._tables_written_alike()
        with at("batch_bytes"):
            parse_size(self.batch_bytes)
        from landfall.redaction import remember_url

        for url in (self.lake, self.state_url, *msgspec.structs.astuple(self.zones)):
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
            if _reads(hop, out):
                raise ValueError(f"workflow `{hop.name}` writes into `{out}`, which its own `match` reads")
            fed = self.fed_by_workflow(hop)
            appending = [w.name for w in fed if w.on_change == "append"]
            if appending:
                raise ValueError(
                    f"workflow `{appending[0]}` loads the files workflow `{hop.name}` writes: it needs "
                    "`on_change: replace` (a file written again replaces its rows), not `append`"
                )
        stream_names = [s.name.lower() for s in self.streams]  # each names a log folder: `Clicks` is `clicks` on macOS
        repeated = sorted({s.name for s in self.streams if stream_names.count(s.name.lower()) > 1})
        if repeated:
            raise ValueError(
                f"stream names must be unique, ignoring case (each names a folder); repeated: "
                f"{', '.join(f'`{r}`' for r in repeated)}"
            )
        if self.streams and not self.stream_log_dir and "://" in self.state_dir:
            raise ValueError(
                f"streams keep their segment log on a local disk, and the state zone `{self.state_dir}` is not "
                "one: set `stream_log_dir` to a local folder"
            )
        if self.stream_log_dir and "://" in self.stream_log_dir:
            raise ValueError(f"`stream_log_dir` `{self.stream_log_dir}`: expected a local folder (fsync needs one)")
        with at("spark_above"):
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

    def _tables_written_alike(self) -> None:
        """Workflows sharing a table write it the same way: another format or partitioning made one folder two
        tables (the catalog followed whichever committed last, and a partition column read NULL), and an `append`
        beside a `merge` broke the one row per key."""
        first: dict[str, Workflow] = {}
        spelled: dict[str, tuple[str, Workflow]] = {}
        for wf in self.workflows:
            for table in (wf.write.table, *wf.child_tables.values()):
                if table is None:
                    continue
                was, by = spelled.setdefault(table.lower(), (table, wf))
                if was != table:
                    raise ValueError(
                        f"workflows `{by.name}` and `{wf.name}` write tables `{was}` and `{table}`, which SQL (and a "
                        "file system that ignores case, as macOS's) does not tell apart: spell them alike, or name "
                        "them otherwise"
                    )
                other = first.setdefault(table, wf)
                if other is wf:
                    continue
                if table in other.child_tables.values() or table in wf.child_tables.values():
                    raise ValueError(
                        f"workflows `{other.name}` and `{wf.name}` both write table `{table}` (one of them as a "
                        "child table); name one of them otherwise"
                    )
                for key in ("format", "mode", "overwrite", "keys", "order_by", "partition_by"):
                    mine, theirs = getattr(wf.write, key), getattr(other.write, key)
                    if key == "partition_by":
                        mine, theirs = ([_partition_text(p) for p in x] for x in (mine, theirs))
                    if mine != theirs and (key != "overwrite" or wf.write.mode == "overwrite"):
                        raise ValueError(
                            f"workflows `{other.name}` and `{wf.name}` both write table `{table}`, with "
                            f"`write.{key}` {_shown(theirs)} and {_shown(mine)}; workflows sharing a table write it "
                            "the same way (`format`, `mode`, `overwrite`, `keys`, `order_by`, `partition_by`)"
                        )

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
        return [parse(SourceConfig, n) for n in (("listing", "watch") if local else ("listing",))]

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

    def fed_by_workflow(self, wf: Workflow) -> list[Workflow]:
        """The workflows that load what `wf` writes: the files it lands (`write.landing`), or its table's runs."""
        if wf.write.landing:
            return [w for w in self.workflows if w is not wf and _reads(w, wf.write.landing)]
        return self.fed_by(wf.write.table)

    def in_order(self) -> tuple[list[str], list[str]]:
        """What takes its files one job at a time, in the order they landed: (tables, workflows). The tables of
        workflows `in_order`, and whatever feeds one of them, however many hops before: an upstream table's runs
        (`source: {table: ...}`) and a hop's files reach the next workflow in the order they commit, so they must
        commit in the order their files landed (a hop, which writes no table, goes by its workflow)."""
        ordered = {w.name for w in self.workflows if w.in_order}
        grown = True
        while grown:
            grown = False
            for w in self.workflows:
                if w.name not in ordered and any(x.name in ordered for x in self.fed_by_workflow(w)):
                    ordered.add(w.name)
                    grown = True
        chosen = [w for w in self.workflows if w.name in ordered]
        tables = sorted({w.write.table for w in chosen if w.write.table})
        return tables, sorted(w.name for w in chosen if not w.write.table)

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


def _shown(value: object) -> str:
    """A `write` setting as landfall.yaml spells it: `delta`, `[id, day]`, `none`."""
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "none" if value is None else str(value)


def _partition_text(p: PartitionColumn) -> str:
    """A partition as landfall.yaml spells it: `region`, `day(sold_at)`, `{d: day(sold_at)}`."""
    text = f"{p.function}({p.column})" if p.function else p.column
    return text if p.name == (p.function or p.column) else f"{{{p.name}: {text}}}"


def _reads(w: Workflow, landing: str) -> bool:
    """Whether workflow `w` may load files under the `landing` prefix a hop writes into (their `match` and the
    prefix overlap)."""
    literal = w.match.split("*")[0]
    return landing.startswith(literal) or literal.startswith(landing)
