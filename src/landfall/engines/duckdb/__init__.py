"""The embedded engine: DuckDB in-process (see `engine.py`), in parts a newcomer can find by name:
`reading`, `steps`, `quality`, `writing`, `diagnose` (line and reason of bad input), `sql` (shared helpers)."""

from landfall.engines.duckdb.casts import cast_sql
from landfall.engines.duckdb.diagnose import diagnose
from landfall.engines.duckdb.engine import DuckDBEngine
from landfall.engines.duckdb.sql import file_format, lit, q

__all__ = ["DuckDBEngine", "cast_sql", "diagnose", "file_format", "lit", "q"]
