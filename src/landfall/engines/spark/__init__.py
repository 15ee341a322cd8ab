"""The Spark engine (`engine: spark`): the same workflows on Spark, in parts a newcomer can find by name:
`session` (one per process), `reading`, `steps`, `quality`, `writing`, `numbering` and `lines` (record numbers
and lines, exactly), `types` (Spark <-> catalog types), `translate` (DuckDB SQL -> Spark SQL, with sqlglot).
The engine itself is `engine.SparkEngine`, found by name through `landfall.registry`."""
