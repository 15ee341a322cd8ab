"""Which engine runs a workflow (`engine:`), and the DuckDB (`duckdb:`) and Spark (`spark:`) engines'
settings."""

from typing import Annotated, Any

from msgspec import Meta

from landfall.config.common import size_text
from landfall.config.model import Context, Model, at


def known_engine(value: str) -> str:
    """An engine name from `landfall.registry` (or `module:Class`), or `auto` (Spark above `spark_above`)."""
    from landfall.registry import names

    if value != "auto" and value not in names("engine") and ":" not in value:
        allowed = [*names("engine"), "auto"]
        raise ValueError(f"unknown engine `{value}`; expected one of " + ", ".join(f"`{n}`" for n in allowed))
    return value


class DuckDBSettings(Model, kw_only=True):
    """The DuckDB engine's resources (`duckdb:`): one database per process and lake, shared by its workers."""

    threads: Annotated[int, Meta(ge=1)] | None = None  # default: one per core
    memory_limit: str | None = None  # e.g. `1GB`; default: DuckDB's own (80% of RAM); beyond it DuckDB spills

    def _check(self, context: Context) -> None:
        with at("memory_limit"):
            size_text(self.memory_limit)


class SparkSettings(Model, kw_only=True):
    """Where workflows with `engine: spark` run: `master` is `local[*]`, `local[N]`, `spark://host:7077`, `yarn`
    or `k8s://...`; `conf` holds any Spark properties (`spark.executor.memory: 4g`)."""

    master: str = "local[*]"
    conf: dict[str, str] = {}
    app_name: str = "landfall"

    _short_forms = {"conf": lambda conf: _as_text(conf) if isinstance(conf, dict) else conf}


def _as_text(conf: dict[Any, Any]) -> dict[str, str]:
    """Spark properties as text: YAML reads `4g` as text but `2` as a number, `true` as a bool."""
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}
