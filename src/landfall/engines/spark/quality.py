"""Schema hints and evolution policies, data-quality rules and quarantine, on Spark.

Rules are counted while the output is written (an observation over the flagged rows), so a clean file is read
once. Rows that break a `quarantine` rule are left out of the output by the same pass; when some did, or a
`fail` rule was broken, a second pass numbers the flagged rows and finds their lines (see `numbering`).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall.engines.base import where_in
from landfall.engines.duckdb.quality import _reason_for, _rule_columns, _SchemaRule
from landfall.engines.spark import translate, writing
from landfall.engines.spark.casts import strict_cast
from landfall.engines.spark.context import LINEAGE, Ctx, c, columns
from landfall.engines.spark.types import spark_type
from landfall.errors import InvalidInput
from landfall.schema import schema_diff, table_spelling
from landfall.types import user_type


def fit_schema(ctx: Ctx, df: DataFrame) -> tuple[DataFrame, list[Any]]:
    """Declared types (`schema.hints`), then the evolution policy against the table's schema (see the DuckDB
    engine's `_fit_schema`, which this follows). Returns the rows and extra quarantine rules (`discard_row`)."""
    job = ctx.job
    policy = ctx.workflow.schema_
    types = {f.name: f.dataType for f in df.schema.fields}
    if spelled := table_spelling(types, job.table_schema):  # `ID` in a table of `id`: the table's column
        df = df.withColumnsRenamed(spelled)
        for a, b in spelled.items():
            if a in ctx.json_detected:
                ctx.json_detected[b] = ctx.json_detected.pop(a)
        types = {f.name: f.dataType for f in df.schema.fields}
    # a hinted column a file lacks is passed over (NULL in its rows, as any column it lacks); names ignore case
    spelled = {n.lower(): n for n in types}
    if hints := {spelled[h.lower()]: t for h, t in policy.hints.items() if h.lower() in spelled}:
        df = df.withColumns(
            {n: strict_cast(c(n), types[n], spark_type(user_type(t)), name=n, digits=False) for n, t in hints.items()}
        )
    if policy.evolution == "evolve" or not job.table_schema:
        return df, []
    derived = [p.name for p in ctx.workflow.write.partition_by if p.function]
    diff = schema_diff(dict(writing.as_read(ctx, df)), job.table_schema, LINEAGE, derived)
    table, new, changed = diff.table, diff.new, diff.changed
    if policy.evolution == "freeze":
        diff.refuse_if_frozen(job.sources[0].key if len(job.sources) == 1 else "the batch", ctx.workflow.write.table)
        return df, []
    types = {f.name: f.dataType for f in df.schema.fields}
    fits = {n: strict_cast(c(n), types[n], spark_type(table[n]), try_=True) for n in changed}
    misfit = [c(n).isNotNull() & fits[n].isNull() for n in changed] + [c(n).isNotNull() for n in new]
    if policy.evolution == "rescue":
        if not new and not changed:
            return df, []
        values = [(n, F.when(c(n).isNotNull() & fits[n].isNull(), c(n).cast("string"))) for n in changed]
        values += [(n, c(n)) for n in new]
        src = F.lit(job.sources[0].key) if not ctx.batch else _key_column(ctx)
        # `"name":<value as JSON>` for each value rescued (a column whose value fit, or is NULL, is left out)
        pieces = [_member(n, v) for n, v in [*values, ("_file", src)]]
        rescued = F.when(_any(misfit), F.concat(F.lit("{"), F.concat_ws(",", *pieces), F.lit("}")))
        keep = [fits[n].alias(n) if n in fits else c(n) for n in df.columns if n not in new]
        return df.select(*keep, rescued.alias("_rescued_data")), []
    if not misfit:
        return df, []
    return df, [_SchemaRule(expr="", reason=diff.misfit_reason(), columns=changed + new)]


def flag(ctx: Ctx, df: DataFrame, extra: list[Any]) -> tuple[DataFrame, list[Any]]:
    """The rows with a `__lf_bad<i>` flag per rule, counted as the output is written (observation `rules`)."""
    rules = list(ctx.workflow.validate_) + list(extra)
    names = columns(df)
    for rule in rules:
        missing = [m for m in _rule_columns(rule) if m not in names]
        if missing:
            raise InvalidInput(
                f"workflow `{ctx.workflow.name}` rule `{rule.label}`: no column "
                + ", ".join(f"`{m}`" for m in missing)
                + "; columns are "
                + ", ".join(f"`{n}`" for n in names)
            )
    ctx.judged_text = [n for n, t in df.dtypes if t == "string"]
    for i, rule in enumerate(rules):
        df = violation(ctx, rule, df, f"__lf_bad{i}")
    quarantined = [F.col(f"__lf_bad{i}") for i, r in enumerate(rules) if r.action == "quarantine"]
    checks = [F.count(F.lit(1)).alias("total")] + [
        F.count_if(F.col(f"__lf_bad{i}")).alias(f"bad{i}") for i in range(len(rules))
    ]
    checks.append(F.count_if(_any(quarantined)).alias("quarantined"))
    return df.observe(ctx.observe("rules"), *checks), rules


def good_rows(df: DataFrame, rules: list[Any]) -> DataFrame:
    """Rows that break no `quarantine` rule, without the flags."""
    bad = [F.col(f"__lf_bad{i}") for i, r in enumerate(rules) if r.action == "quarantine"]
    out = df.where(~_any(bad)) if bad else df
    return out.drop(*[f"__lf_bad{i}" for i in range(len(rules))])


def judge(ctx: Ctx, flagged: DataFrame, rules: list[Any]) -> tuple[dict[str, Any], DataFrame | None]:
    """After the write: each rule's count; a broken `fail` rule (or `row_count`) fails the file naming the rule,
    the count and the first line; rows set aside by `quarantine` rules come back with their line, rule, column
    and reason. Returns the quality record and the quarantine rows (or None)."""
    from landfall.engines.spark.numbering import first_line, with_lines

    got = ctx.observed("rules")
    total = int(got.get("total", 0))
    key = ctx.job.sources[0].key if len(ctx.job.sources) == 1 else ", ".join(s.key for s in ctx.job.sources)
    quality: dict[str, Any] = {}
    for i, rule in enumerate(rules):
        n = int(got.get(f"bad{i}", 0))
        if rule.kind == "row_count":
            rc = rule.row_count
            n = int((rc.min is not None and total < rc.min) or (rc.max is not None and total > rc.max))
            if n and rule.action == "fail":
                bound = " and ".join(
                    x
                    for x in (
                        f"at least {rc.min}" if rc.min is not None else "",
                        f"at most {rc.max}" if rc.max is not None else "",
                    )
                    if x
                )
                raise InvalidInput(f"`{key}`: rule `{rule.label}` failed: {total} rows, expected {bound}", file=key)
        quality[rule.label] = {"action": rule.action, "violations": n}
        if n and rule.action == "fail":
            _, line = first_line(ctx, flagged.where(F.col(f"__lf_bad{i}")))
            where = where_in(key, line, ctx.fmt)
            raise InvalidInput(
                f"{where}: rule `{rule.label}` failed for {n} of {total} rows (action: fail)", file=key, line=line
            )
    picked = [i for i, r in enumerate(rules) if r.action == "quarantine" and quality[r.label]["violations"]]
    if not picked:
        return quality, None
    quality["_quarantined"] = int(got.get("quarantined", 0))
    bad = [F.col(f"__lf_bad{i}") for i in picked]
    rule_of = _case([(F.col(f"__lf_bad{i}"), rules[i].label) for i in picked])
    named = [",".join(getattr(r, "columns", None) or _rule_columns(r)) for r in rules]
    column_of = _case([(F.col(f"__lf_bad{i}"), named[i]) for i in picked])
    reason_of = _case([(F.col(f"__lf_bad{i}"), _reason_for(rules[i])) for i in picked])
    rows = with_lines(ctx, flagged.where(_any(bad)))
    data = [c(n) for n in flagged.columns if not n.startswith("__lf_bad")]
    q = rows.select(
        *data,
        c("_line").cast("long").alias("_line"),
        rule_of.alias("_rule"),
        column_of.alias("_column"),
        reason_of.alias("_reason"),
        F.current_timestamp().cast(T.TimestampType()).alias("_quarantined_at"),
    )
    return quality, q


def violation(ctx: Ctx, rule: Any, df: DataFrame, name: str) -> DataFrame:
    """`df` with a boolean column `name`: true for a row that breaks the rule (a NULL passes, except `not_null`)."""
    k = rule.kind
    if k == "schema":
        job = ctx.job
        table = dict(job.table_schema or [])
        types = {f.name: f.dataType for f in df.schema.fields}
        misfit = [
            c(n).isNotNull() & strict_cast(c(n), types[n], spark_type(table[n]), try_=True).isNull()
            if n in table
            else c(n).isNotNull()
            for n in rule.columns
        ]
        return df.withColumn(name, _any(misfit))
    if k == "not_null":
        return df.withColumn(name, _any([c(n).isNull() for n in rule.not_null]))
    if k == "range":
        r = rule.range
        text = dict(df.dtypes).get(r.column) == "string"  # a stray word made it text: judge its numbers
        x = c(r.column).try_cast("double") if text else c(r.column)
        parts = ([x < F.lit(r.min)] if r.min is not None else []) + ([x > F.lit(r.max)] if r.max is not None else [])
        judged = F.coalesce(_any(parts), F.lit(False))
        return df.withColumn(name, c(r.column).isNotNull() & (x.isNull() | judged) if text else judged)
    if k == "accepted_values":
        values = [str(v) for v in rule.accepted_values.values]
        col = c(rule.accepted_values.column).cast("string")
        return df.withColumn(name, F.coalesce(~col.isin(*values), F.lit(False)))
    if k == "regex":
        col = c(rule.regex.column).cast("string")
        return df.withColumn(name, F.coalesce(~col.rlike(rule.regex.pattern), F.lit(False)))
    if k == "expect":
        text = translate.expression(rule.expect, f"workflow `{ctx.workflow.name}` rule `{rule.label}`")
        return df.withColumn(name, ~F.coalesce(F.expr(text), F.lit(False)))
    if k == "unique":
        keys = list(rule.unique.columns)
        some_null = _any([c(k).isNull() for k in keys])
        repeated = F.count(F.lit(1)).over(Window.partitionBy(*[c(k) for k in keys])) > 1
        df = df.withColumn(name, F.when(some_null, F.lit(False)).otherwise(repeated))
        if rule.unique.against_table and ctx.job.table_files:
            from landfall.engines.spark.writing import not_from, read_table_files

            held = read_table_files(ctx, [a for a, _ in ctx.job.table_files])
            if earlier := ctx.job.replaced_rows():  # a changed file's earlier rows, which this commit replaces
                held = held.where(not_from(earlier))
            # a key column a stray word made text is compared as the table holds it: a value that cannot be one is
            # in no row of the table (and fails the file as it is written, naming its line)
            mine, theirs = dict(df.dtypes), dict(held.dtypes)
            held = held.select(*[c(k).alias(f"__lf_k{i}") for i, k in enumerate(keys)]).distinct()
            held = held.withColumn("__lf_held", F.lit(True))
            order = [c(n) for n in df.columns if n != name]
            same = [
                (c(k).try_cast(theirs[k]) if mine[k] == "string" != theirs[k] else c(k)) == c(f"__lf_k{i}")
                for i, k in enumerate(keys)
            ]
            df = df.join(held, on=_all(same), how="left")
            df = df.select(*order, (c(name) | F.coalesce(c("__lf_held"), F.lit(False))).alias(name))
        return df
    return df.withColumn(name, F.lit(False))  # row_count: judged on the whole file


def _key_column(ctx: Ctx) -> Column:
    from landfall.engines.spark.writing import source_key

    return source_key(ctx)


def _member(name: str, value: Column) -> Column:
    """`"name":<value as JSON>`, one member of a JSON object (a null inside the value kept); NULL when the value
    is NULL."""
    one = F.to_json(F.struct(value.alias(name)), {"ignoreNullFields": "false"})  # `{"name":...}`
    return F.when(value.isNotNull(), one.substr(F.lit(2), F.length(one) - 2))


def _any(cols: list[Column]) -> Column:
    if not cols:
        return F.lit(False)
    out = cols[0]
    for col in cols[1:]:
        out = out | col
    return out


def _all(cols: list[Column]) -> Column:
    out = cols[0]
    for col in cols[1:]:
        out = out & col
    return out


def _case(pairs: list[tuple[Column, str]]) -> Column:
    out = None
    for cond, value in pairs:
        out = F.when(cond, F.lit(value)) if out is None else out.when(cond, F.lit(value))
    return out if out is not None else F.lit(None)


__all__ = ["fit_schema", "flag", "good_rows", "judge", "violation"]
