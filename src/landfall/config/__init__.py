"""Typed settings: load and validate `landfall.yaml`.

Precedence, stated once: CLI flags > environment `LANDFALL__SECTION__KEY` > the file > defaults.
Every check that can be made before a run is made here, so a bad config fails at load with the file, the key
and what is allowed, never in the middle of a run.

The models live in modules per concern (`common`, `steps`, `rules`, `writing`, `workflow`, `streams`, `engines`,
`zones`, `serve`, `settings`) and loading in `loading`; everything is imported from `landfall.config`.
"""

from landfall.config.common import FileFormat, TableFormat, landing_prefix, parse_size
from landfall.config.engines import DuckDBSettings, SparkSettings, known_engine
from landfall.config.loading import CONFIG_FILE, load_settings
from landfall.config.rules import (
    RULE_KINDS,
    AcceptedValues,
    RangeSpec,
    RegexSpec,
    RowCount,
    Rule,
    SchemaPolicy,
    UniqueSpec,
)
from landfall.config.serve import AlertRule, AlertSettings, NoFileFor, QuarantineRateAbove, ServeSettings
from landfall.config.settings import Settings
from landfall.config.steps import (
    ROW_WISE,
    STEP_KINDS,
    Cast,
    ChildTables,
    ChildTablesSpec,
    Compute,
    Dedupe,
    DedupeSpec,
    Drop,
    Explode,
    Filter,
    Flatten,
    FlattenSpec,
    NormalizeNames,
    ReadOptions,
    Rename,
    Sql,
    Step,
)
from landfall.config.streams import StreamBuffer, StreamConfig
from landfall.config.workflow import TABLE_EVENTS, RetryPolicy, TableSource, Workflow
from landfall.config.writing import Compaction, ParquetFiles, PartitionColumn, WriteOptions, parse_partition
from landfall.config.zones import StorageSettings, Zones

__all__ = [
    "CONFIG_FILE",
    "ROW_WISE",
    "RULE_KINDS",
    "STEP_KINDS",
    "TABLE_EVENTS",
    "AcceptedValues",
    "AlertRule",
    "AlertSettings",
    "Cast",
    "ChildTables",
    "ChildTablesSpec",
    "Compaction",
    "Compute",
    "Dedupe",
    "DedupeSpec",
    "Drop",
    "DuckDBSettings",
    "Explode",
    "FileFormat",
    "Filter",
    "Flatten",
    "FlattenSpec",
    "NoFileFor",
    "NormalizeNames",
    "ParquetFiles",
    "PartitionColumn",
    "QuarantineRateAbove",
    "RangeSpec",
    "ReadOptions",
    "RegexSpec",
    "Rename",
    "RetryPolicy",
    "RowCount",
    "Rule",
    "SchemaPolicy",
    "ServeSettings",
    "Settings",
    "SparkSettings",
    "Sql",
    "Step",
    "StorageSettings",
    "StreamBuffer",
    "StreamConfig",
    "TableFormat",
    "TableSource",
    "UniqueSpec",
    "Workflow",
    "WriteOptions",
    "Zones",
    "known_engine",
    "landing_prefix",
    "load_settings",
    "parse_partition",
    "parse_size",
]
