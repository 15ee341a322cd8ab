"""SQL written once: a workflow's `sql` steps, `compute` and `filter` expressions, `dedupe.order_by` and `expect`
rules are written in DuckDB's dialect; this module translates them for Spark with sqlglot, and finds what cannot
be translated when the config loads, naming the step and the function.

What cannot be translated: a function Spark does not have (checked against Spark's own list of functions,
`functions.txt`, taken from `SHOW ALL FUNCTIONS`), a type Spark has no equivalent of, and constructs whose meaning
would change (DuckDB's `* REPLACE (...)`, `SIMILAR TO`, `regexp_replace` without the `'g'` option: DuckDB replaces
the first match, Spark every match; `hash`, `format`, `->` / `json_extract`, `AT TIME ZONE`).

Types keep their meaning: DuckDB's `TIMESTAMP` (no time zone) is Spark's `TIMESTAMP_NTZ`, and `TIMESTAMPTZ`
is Spark's `TIMESTAMP_LTZ` (the engine runs Spark with `spark.sql.timestampType = TIMESTAMP_NTZ`); `TIME` is
Spark's own. So do values where sqlglot's Spark dialect would change them: days of the week counted from Sunday = 0
(`_PARTS`), whole month and day names, exact percentiles, and the kind of timestamp `date_trunc`, `to_timestamp`
and `epoch_ms` make.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from landfall.errors import ConfigError
from landfall.registry import missing_dependency

try:
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.spark import Spark
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError
except ModuleNotFoundError as _exc:  # pragma: no cover - sqlglot comes with the `spark` extra
    raise missing_dependency("engine `spark`", _exc.name or "sqlglot", "spark") from None

__all__ = ["check_workflow", "expression", "query", "time_format", "UntranslatableSQL"]

_INPUT = "input"
_SYNTAX = {"cast", "try_cast", "extract"}  # written like calls, not in Spark's list of functions
_NO_SPARK_TYPE = {
    exp.DataType.Type.INT128: "HUGEINT",
    exp.DataType.Type.UINT128: "UHUGEINT",
    exp.DataType.Type.UBIGINT: "UBIGINT",
    exp.DataType.Type.UINT: "UINTEGER",
    exp.DataType.Type.USMALLINT: "USMALLINT",
    exp.DataType.Type.UTINYINT: "UTINYINT",
    exp.DataType.Type.TIMETZ: "TIMETZ",
    exp.DataType.Type.INTERVAL: "INTERVAL",
}


class UntranslatableSQL(ConfigError):
    """Workflow SQL in DuckDB's dialect that has no Spark equivalent."""


class _LandfallSpark(Spark):
    """Spark as landfall runs it: DuckDB's zone-less TIMESTAMP is TIMESTAMP_NTZ, TIMESTAMPTZ is TIMESTAMP_LTZ, and
    TIME is Spark's own (`spark.sql.timeType.enabled`)."""

    class Generator(Spark.Generator):
        def timetostr_sql(self, expression: exp.TimeToStr) -> str:
            """`strftime(x, format)` as DATE_FORMAT in a Spark pattern that writes what DuckDB's format writes: the
            day of the year in three digits (`%j`: sqlglot's `DD` writes `74` for `074`); a specifier with no Spark
            pattern (`%U`, `%w`, `%e`: sqlglot passes it through, and every file failed) cannot be translated."""
            out = super().timetostr_sql(expression)
            if found := re.search(r"%-?[A-Za-z]", out):
                raise UnsupportedError(f"`strftime`'s `{found.group()}`")
            head, quote, pattern = out[:-1].rpartition(", '")  # DATE_FORMAT(x, '<pattern>')
            return f"{head}{quote}{re.sub(r'(?<!D)DD(?!D)', 'DDD', pattern)})" if quote else out

        TYPE_MAPPING = {
            **Spark.Generator.TYPE_MAPPING,
            exp.DataType.Type.TIMESTAMP: "TIMESTAMP_NTZ",
            exp.DataType.Type.TIMESTAMPTZ: "TIMESTAMP_LTZ",
            exp.DataType.Type.TIMESTAMPLTZ: "TIMESTAMP_LTZ",
            exp.DataType.Type.TIME: "TIME",  # (sqlglot's Spark makes it TIMESTAMP: today at that time)
        }
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            # DuckDB's names are whole (`February`, `Thursday`); Spark's MONTHNAME and DAYNAME cut them (`Feb`)
            exp.Monthname: lambda self, e: f"DATE_FORMAT({self.sql(e, 'this')}, 'MMMM')",
            exp.Dayname: lambda self, e: f"DATE_FORMAT({self.sql(e, 'this')}, 'EEEE')",
            # exact percentiles, in the SQL standard's form, which Spark takes: DuckDB's `quantile_cont(x, q)` (sqlglot
            # wrote PERCENTILE_CONT(x, q), which Spark refuses), `quantile_disc` and `quantile`, and the standard's
            # own (sqlglot wrote PERCENTILE_APPROX: an estimate)
            exp.PercentileCont: lambda self, e: _percentile(self, e, "PERCENTILE_CONT"),
            exp.PercentileDisc: lambda self, e: _percentile(self, e, "PERCENTILE_DISC"),
            exp.Quantile: lambda self, e: _percentile(self, e, "PERCENTILE_DISC"),
            exp.WithinGroup: lambda self, e: f"{self.sql(e, 'this')} WITHIN GROUP ({self.sql(e, 'expression')})",
            exp.TimestampTrunc: lambda self, e: _truncated(self, e),
            # DuckDB's `list_contains` is false for a value a list with NULLs lacks (Spark's ARRAY_CONTAINS: NULL), and
            # `list_distinct` leaves NULLs out (Spark's keeps one)
            exp.ArrayContains: lambda self, e: (
                f"CASE WHEN {self.sql(e, 'this')} IS NULL OR {self.sql(e, 'expression')} IS NULL THEN NULL "
                f"ELSE COALESCE(ARRAY_CONTAINS({self.sql(e, 'this')}, {self.sql(e, 'expression')}), FALSE) END"
            ),
            exp.ArrayDistinct: lambda self, e: (
                f"ARRAY_DISTINCT(FILTER({self.sql(e, 'this')}, __lf_x -> __lf_x IS NOT NULL))"
            ),
            # DuckDB's `list(x)` keeps NULLs; Spark's COLLECT_LIST drops them: each is collected inside a struct
            exp.ArrayAgg: lambda self, e: (
                f"TRANSFORM(COLLECT_LIST(NAMED_STRUCT('v', {self.sql(e, 'this')})), __lf_e -> __lf_e.v)"
            ),
            exp.UnixToTime: lambda self, e: _from_epoch(self, e),
        }


def _truncated(gen: Any, e: Any) -> str:
    """`date_trunc(unit, x)` of the type DuckDB's has: a zone-less TIMESTAMP for a date or a zone-less timestamp, a
    TIMESTAMPTZ for one (Spark's DATE_TRUNC is always TIMESTAMP_LTZ: a table would take another type from each
    engine, and with `engine: auto` a file was dead, `TIMESTAMPTZ in this file but TIMESTAMP in the table`). The
    truncated instant is added, as an interval, to `x` as a timestamp of its own kind (a CASE's common type: a
    date becomes TIMESTAMP_NTZ, a TIMESTAMP_LTZ stays one); the session's time zone is UTC."""
    x = gen.sql(e, "this")
    kind = f"CASE WHEN FALSE THEN TIMESTAMP_NTZ'1970-01-01 00:00:00' ELSE {x} END"
    return f"(({kind}) + ({_TRUNC(gen, e)} - ({kind})))"


_TRUNC = Spark.Generator.TRANSFORMS[exp.TimestampTrunc]


def _from_epoch(gen: Any, e: Any) -> str:
    """DuckDB's `to_timestamp(seconds)`, a TIMESTAMPTZ with the seconds' fraction (sqlglot wrote FROM_UNIXTIME, whole
    seconds, zone-less), and `epoch_ms(ms)` / `make_timestamp(us)`, zone-less TIMESTAMPs (Spark's TIMESTAMP_MILLIS
    and TIMESTAMP_MICROS have a zone)."""
    x, scale = gen.sql(e, "this"), gen.sql(e, "scale")
    if not scale or scale == "0":
        return f"TIMESTAMP_SECONDS({x})"
    unit = {"3": "MILLIS", "6": "MICROS"}.get(scale)
    if unit is None:
        raise UnsupportedError(f"an epoch in units of 10^-{scale} s")
    return f"CAST(TIMESTAMP_{unit}({x}) AS TIMESTAMP_NTZ)"


def _percentile(gen: Any, e: Any, name: str) -> str:
    """`NAME(q) WITHIN GROUP (ORDER BY x)` for DuckDB's `quantile_cont(x, q)`; `NAME(q)` inside the standard's form."""
    if isinstance(e.parent, exp.WithinGroup):
        return f"{name}({gen.sql(e, 'this')})"
    q = gen.sql(e, "quantile" if isinstance(e, exp.Quantile) else "expression")
    return f"{name}({q}) WITHIN GROUP (ORDER BY {gen.sql(e, 'this')})"


@lru_cache(maxsize=1)
def spark_functions() -> frozenset[str]:
    """The names of Spark's built-in functions (lower case)."""
    text = (Path(__file__).with_name("functions.txt")).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def expression(text: str, where: str = "expression") -> str:
    """A DuckDB SQL expression (`price * quantity`, `strftime(d, '%Y-%m')`) as Spark SQL."""
    return _translate(text, where, kind="expression")


def query(text: str, input_name: str, where: str = "sql step") -> str:
    """A DuckDB query reading `input` as Spark SQL reading the view `input_name`."""
    return _translate(text, where, kind="query", input_name=input_name)


@lru_cache(maxsize=4096)
def _translate(text: str, where: str, *, kind: str, input_name: str = _INPUT) -> str:
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError as exc:
        raise UntranslatableSQL(f"{where}: not valid SQL: {_first(exc)}") from None
    if kind == "query":
        if not isinstance(tree, exp.Query):
            raise UntranslatableSQL(f"{where}: expected a query (`SELECT ... FROM input`)")
        for table in tree.find_all(exp.Table):
            if table.name.lower() == _INPUT and not table.args.get("db"):
                table.set("this", exp.to_identifier(input_name))
    _refuse_changed_meaning(tree, where)
    tree = _same_meaning(tree)
    try:
        out = tree.sql(dialect=_LandfallSpark, unsupported_level=ErrorLevel.RAISE)
        _check_functions(out, where)
    except (UnsupportedError, ParseError) as exc:
        raise UntranslatableSQL(f"{where}: {_first(exc)}; it has no Spark equivalent") from None
    return out


#: DuckDB's date parts whose numbers Spark counts otherwise -> the Spark SQL for them, `{}` the date: DuckDB numbers a
#: week's days from Sunday = 0 (`dow`, `dayofweek`, `weekday`), Spark's DAYOFWEEK from Sunday = 1 (and its
#: WEEKDAY from Monday = 0); `isodow` is Monday = 1 to Sunday = 7 on both; `epoch` is seconds with their fraction
#: (a DOUBLE) on DuckDB, whole seconds on Spark's UNIX_TIMESTAMP
_PARTS = {
    "dow": "(DAYOFWEEK({}) - 1)",
    "dayofweek": "(DAYOFWEEK({}) - 1)",
    "weekday": "(DAYOFWEEK({}) - 1)",
    "isodow": "((DAYOFWEEK({}) + 5) % 7 + 1)",
    "epoch": "(UNIX_MICROS(CAST({} AS TIMESTAMP_LTZ)) / 1e6)",
}


def _same_meaning(tree: Any) -> Any:
    """`tree` with each date part DuckDB and Spark number differently (`_PARTS`) written out as DuckDB means it,
    however the part is asked for (`dayofweek(d)`, `extract(dow FROM d)`, `date_part('dow', d)`, `epoch(ts)`); an
    interval added to a date as DuckDB adds it (`_interval_added`); `printf` NULL when an argument is (Spark's
    writes `null`)."""
    for node in list(tree.find_all(exp.Add, exp.Sub, exp.DateAdd, exp.DateSub)):
        if (new := _interval_added(node)) is not None:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    for node in list(tree.find_all(exp.RegexpLike)):  # `regexp_matches(s, p, 'i')`: Spark's RLIKE takes no options
        flag = node.args.get("flag")
        if flag is not None and flag.is_string and "i" in flag.name and "c" not in flag.name:
            pattern = node.expression
            node.set(
                "expression", exp.Paren(this=exp.DPipe(this=exp.Literal.string("(?i)"), expression=pattern.copy()))
            )
        node.set("flag", None)
    for node in list(tree.find_all(exp.DateDiff)):
        # DuckDB counts the unit's boundaries between the two (23:59 to 00:01 is an hour, a day); Spark's
        # TIMESTAMPDIFF whole units elapsed (none): both truncated to the unit, the two are one
        unit = node.args.get("unit")
        if unit is not None and node.args.get("date_part_boundary"):
            for arg in ("this", "expression"):
                node.set(arg, exp.TimestampTrunc(this=node.args[arg].copy(), unit=unit.copy()))
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() in ("printf", "format_string") and len(node.expressions) > 1:
            nulls = exp.or_(*(exp.Is(this=a.copy(), expression=exp.Null()) for a in node.expressions[1:]))
            new = exp.Case(ifs=[exp.If(this=nulls, true=exp.Null())], default=node.copy())
            if node is tree:
                tree = new
            else:
                node.replace(new)
    for node in list(tree.find_all(exp.DayOfWeek, exp.DayOfWeekIso, exp.Extract, exp.Anonymous, exp.TimeToUnix)):
        part, value = _part_of(node)
        if part not in _PARTS:
            continue
        new = sqlglot.parse_one(_PARTS[part].format("__lf_part"), read=_LandfallSpark)
        new.find(exp.Column).replace(value.copy())
        if node is tree:
            return new
        node.replace(new)
    return tree


def _interval_added(node: Any) -> Any:
    """`x + INTERVAL ...` (or `-`, `date_add(x, INTERVAL ...)`, `date_sub`) with `x` a timestamp as DuckDB makes it:
    a date plus an interval is a zone-less TIMESTAMP on DuckDB and a DATE on Spark (whose DATE_ADD takes no interval
    at all), a timestamp with a zone stays one (the common type with TIMESTAMP_NTZ, as in `_truncated`). None when
    no interval is added."""
    this, other = node.this, node.expression
    if isinstance(node, exp.Add) and isinstance(this, exp.Interval):
        this, other = other, this
    if not isinstance(other, exp.Interval) or isinstance(this, exp.Interval):
        return None
    kind = sqlglot.parse_one("CASE WHEN FALSE THEN TIMESTAMP_NTZ'1970-01-01 00:00:00' ELSE __lf_x END", read="spark")
    kind.find(exp.Column).replace(this.copy())
    op = exp.Sub if isinstance(node, (exp.Sub, exp.DateSub)) else exp.Add
    return exp.Paren(this=op(this=exp.Paren(this=kind), expression=other.copy()))


def _part_of(node: Any) -> tuple[str | None, Any]:
    """The date part a node asks for and the value it asks it of (None: not a date part)."""
    if isinstance(node, exp.DayOfWeek):
        return "dow", node.this
    if isinstance(node, exp.DayOfWeekIso):
        return "isodow", node.this
    if isinstance(node, exp.TimeToUnix):
        return "epoch", node.this
    if isinstance(node, exp.Extract):
        return node.this.name.lower(), node.expression
    name, args = node.name.lower(), node.expressions
    if name in ("date_part", "datepart") and len(args) == 2 and args[0].is_string:
        return args[0].name.lower(), args[1]
    if name == "weekday" and len(args) == 1:
        return "weekday", args[0]
    return None, None


def _refuse_changed_meaning(tree: Any, where: str) -> None:
    """Constructs sqlglot passes through but Spark would read differently (or not at all)."""
    for node in tree.walk():
        if isinstance(node, exp.Star) and (node.args.get("replace") or node.args.get("rename")):
            what = "REPLACE" if node.args.get("replace") else "RENAME"
            raise UntranslatableSQL(
                f"{where}: `* {what} (...)` has no Spark equivalent; list the columns, or use a `compute` "
                "(or `rename`) step, which both engines run"
            )
        if isinstance(node, exp.AtTimeZone):
            raise UntranslatableSQL(
                f"{where}: `AT TIME ZONE` converts one way or the other by its value's kind (with a zone or without), "
                "which Spark's translation cannot tell; convert in a workflow on `engine: duckdb`, or keep "
                "timestamps with their zone"
            )
        if isinstance(node, exp.Format):
            raise UntranslatableSQL(
                f"{where}: `format` fills `{{}}` on DuckDB and printf's `%s` on Spark; use `printf('%s ...', ...)` "
                "or `concat(...)`, which both engines compute alike"
            )
        if isinstance(node, exp.JSONExtract):
            raise UntranslatableSQL(
                f'{where}: `->` and `json_extract` give JSON on DuckDB (a string with its quotes, `"x"`) and the '
                "bare value on Spark; use `->>` or `json_extract_string`, which give text on both engines"
            )
        if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
            raise UntranslatableSQL(
                f"{where}: `hash` gives other numbers on Spark (another hash function); use `md5(...)`, which both "
                "engines compute alike"
            )
        if isinstance(node, exp.AggFunc) and isinstance(node.this, exp.Order) and not isinstance(node, exp.GroupConcat):
            raise UntranslatableSQL(
                f"{where}: `ORDER BY` inside an aggregate (`{node.sql(dialect='duckdb')}`): Spark's aggregates keep no "
                "order (only `string_agg`'s); use `arg_max` / `arg_min` for the value of the greatest or least row, "
                "which both engines compute alike"
            )
        if isinstance(node, exp.RegexpLike) and node.args.get("flag") is not None:
            flag = node.args["flag"]
            if not flag.is_string or set(flag.name) - {"i", "c"}:
                raise UntranslatableSQL(
                    f"{where}: `regexp_matches` options other than `'i'` (ignore case) have no Spark equivalent; "
                    "write them into the pattern (`(?s)`, `(?m)`)"
                )
        if isinstance(node, exp.Typeof):
            raise UntranslatableSQL(
                f"{where}: `typeof` names types otherwise on Spark (`bigint` for DuckDB's `BIGINT`, `string` for "
                "`VARCHAR`); test the values themselves"
            )
        if isinstance(node, exp.SimilarTo):
            raise UntranslatableSQL(f"{where}: `SIMILAR TO` has no Spark equivalent; use `regexp_matches`")
        if isinstance(node, exp.RegexpReplace):
            modifiers = node.args.get("modifiers")
            if modifiers is None or "g" not in str(modifiers.name if hasattr(modifiers, "name") else modifiers):
                raise UntranslatableSQL(
                    f"{where}: `regexp_replace` without the `'g'` option replaces the first match in DuckDB but "
                    "every match in Spark; add `'g'` to replace every match on both engines"
                )
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIME and not _spark_has_time():
            raise UntranslatableSQL(f"{where}: type `TIME` needs Spark 4.1 or later; this pyspark has none")
        if isinstance(node, exp.DataType) and node.this in _NO_SPARK_TYPE:
            raise UntranslatableSQL(
                f"{where}: type `{_NO_SPARK_TYPE[node.this]}` has no Spark equivalent; use `BIGINT`, `DOUBLE`, "
                "`DECIMAL(p,s)` or `VARCHAR`"
            )


def _spark_has_time() -> bool:
    from landfall.engines.spark.types import TIME

    return TIME is not None


def _check_functions(spark_sql: str, where: str) -> None:
    """Every function the Spark SQL calls must be one of Spark's."""
    known = spark_functions()
    tree = sqlglot.parse_one(spark_sql, read=_LandfallSpark)
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            name = node.name
        else:
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\(", node.sql(dialect=_LandfallSpark))
            if not m:
                continue  # written as an operator (`a || b`, `x RLIKE p`)
            name = m.group(1)
        if name.lower() not in known and name.lower() not in _SYNTAX:
            raise UntranslatableSQL(
                f"{where}: function `{name.lower()}` has no Spark equivalent; write it with functions both "
                "engines have, or run this workflow with `engine: duckdb`"
            )


def time_format(duckdb_format: str) -> str:
    """A DuckDB strftime format (`%d/%m/%Y`) as a Spark datetime pattern (`d/M/yyyy`): each specifier as sqlglot
    maps it, and text between them quoted where Spark would read it as a pattern (`T` and `Z` in
    `%Y-%m-%dT%H:%M:%SZ` are letters written, not a field and a zone: `yyyy-M-d'T'H:m:s'Z'`)."""
    out = []
    for part in re.findall(r"%-?[A-Za-z]|%%|[^%]+|%", duckdb_format):
        if part.startswith("%") and len(part) > 1 and part != "%%":
            out.append(_specifier(part, duckdb_format))
        else:
            text = "%" if part == "%%" else part
            out.append("'" + text.replace("'", "''") + "'" if re.search(r"[A-Za-z'\[\]{}#]", text) else text)
    return "".join(out)


@lru_cache(maxsize=64)
def _specifier(spec: str, whole: str) -> str:
    out = sqlglot.transpile(f"strptime(x, {_lit(spec)})", read="duckdb", write=_LandfallSpark)[0]
    m = re.search(r", '((?:[^']|'')*)'\)$", out)
    if not m or m.group(1) == spec:
        raise UntranslatableSQL(f"date format `{whole}` has no Spark equivalent (`{spec}`)")
    return m.group(1).replace("''", "'")


def check_workflow(workflow: Any) -> None:
    """Translate every piece of SQL in a workflow, so that what Spark cannot run fails when the config loads."""
    name = workflow.name
    for i, step in enumerate(workflow.transform, start=1):
        where = f"workflow `{name}` step {i} (`{step.kind}`)"
        if step.kind == "sql":
            query(step.sql, "__lf_input", where)
        elif step.kind == "compute":
            for column, text in step.compute.items():
                expression(text, f"{where} column `{column}`")
        elif step.kind == "filter":
            expression(step.filter, where)
        elif step.kind == "dedupe" and step.dedupe.order_by:
            expression(step.dedupe.order_by, f"{where} `order_by`")
    for rule in workflow.validate_:
        if rule.expect is not None:
            expression(rule.expect, f"workflow `{name}` rule `{rule.label}`")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _first(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
