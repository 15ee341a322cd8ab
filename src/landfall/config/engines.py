"""Which engine runs a workflow (`engine:`), and the DuckDB (`duckdb:`) and Spark (`spark:`) engines'
settings."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from landfall.config.common import Model, size_text


def known_engine(value: str) -> str:
    """An engine name from `landfall.registry` (or `module:Class`), or `auto` (Spark above `spark_above`)."""
    from landfall.registry import names

    if value != "auto" and value not in names("engine") and ":" not in value:
        allowed = [*names("engine"), "auto"]
        raise ValueError(f"unknown engine `{value}`; expected one of " + ", ".join(f"`{n}`" for n in allowed))
    return value


class DuckDBSettings(Model):
    """The DuckDB engine's resources (`duckdb:`): one database per process and lake, shared by its workers."""

    threads: int | None = Field(None, ge=1)  # default: one per core
    memory_limit: str | None = None  # e.g. `1GB`; default: DuckDB's own (80% of RAM); beyond it DuckDB spills

    _size = field_validator("memory_limit")(lambda cls, value: size_text(value))


class SparkSettings(Model):
    """Where workflows with `engine: spark` run: `master` is `local[*]`, `local[N]`, `spark://host:7077`, `yarn`
    or `k8s://...`; `conf` holds any Spark properties (`spark.executor.memory: 4g`)."""

    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)
    app_name: str = "landfall"

    @field_validator("conf", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML reads `4g` as text but `2` as a number, `true` as a bool
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value
