"""Whole numbers beyond 64 bits in JSON. DuckDB's JSON reader detects a number too large for a 64-bit integer
(`123456789012345678901234567890`, an id or an amount in the smallest unit) as DOUBLE, which rounds it
(to 1.2345678901234568e+29), at the top of a record or inside an object or a list. A column (or field) whose every
value is a whole number written without a fraction or an exponent, of at most 38 digits, is read as
`DECIMAL(38,0)` instead, which DuckDB's reader fills exactly (as landfall reads such numbers from CSV). Checked on
the type sample; a later one in a column of 64-bit integers breaks that type, and the file is read again with its
types detected on the whole file (`ReadPlan.sample_all`), checked whole. A column that also holds fractions stays
DOUBLE (as in CSV)."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from landfall.engines.duckdb.jsondates import Leaf, _walk
from landfall.engines.duckdb.sql import q

EXACT = "DECIMAL(38,0)"
_DOUBLE = frozenset({"double"})
_WHOLE = "'-?[0-9]{1,38}'"  # a number's JSON text that DECIMAL(38,0) holds whole


def whole_numbers(
    con: duckdb.DuckDBPyConnection, detected: dict[str, str], read: Callable[[dict[str, str]], str], limit: int | None
) -> dict[str, str]:
    """`detected` (column -> DuckDB type) with each DOUBLE leaf whose values in the first `limit` records of
    `read(columns)` (None: every record) are all whole numbers of at most 38 digits as DECIMAL(38,0)."""
    leaves: list[Leaf] = []
    as_json = {
        n: _walk(con.sqltype(t), q(n), n, leaves, lambda _p: True, _DOUBLE, "JSON")
        for n, t in detected.items()
        if "DOUBLE" in t
    }
    if not leaves:
        return detected
    sample = f"SELECT * FROM ({read({**detected, **as_json})})" + (f" LIMIT {limit}" if limit is not None else "")

    def not_whole(e: str) -> str:
        return f"({e} IS NOT NULL AND NOT regexp_full_match(CAST({e} AS VARCHAR), {_WHOLE}))"

    checks = [f"coalesce(bool_or({leaf.some(not_whole)}), false)" for leaf in leaves]
    checks += [f"coalesce(bool_or({leaf.some(lambda e: f'{e} IS NOT NULL')}), false)" for leaf in leaves]
    row = con.execute(f"SELECT {', '.join(checks)} FROM ({sample})").fetchone()
    fractions, held = row[: len(leaves)], row[len(leaves) :]
    exact = {leaf.path for leaf, frac, some in zip(leaves, fractions, held, strict=True) if some and not frac}
    if not exact:
        return detected
    out = dict(detected)
    for name in as_json:
        out[name] = _walk(con.sqltype(detected[name]), q(name), name, [], lambda p: p in exact, _DOUBLE, EXACT)
    return out
