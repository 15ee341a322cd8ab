"""Schema hints and evolution policies, data-quality rules, quarantine and its replay."""

from __future__ import annotations

import os
from typing import Any

import duckdb
import msgspec
from msgspec.structs import replace

from landfall.engines.base import Replayed, rule_expressions, rule_named, where_in
from landfall.engines.duckdb.casts import cast_sql, conformed
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.datewords import renamed
from landfall.engines.duckdb.records import with_lines
from landfall.engines.duckdb.sql import (
    LINEAGE,
    PATH,
    ROW,
    NeedLines,
    _first_line,
    _paths,
    lit,
    q,
)
from landfall.engines.duckdb.steps import typing_hint
from landfall.engines.duckdb.types import arrow_type, duck_type, sql_type
from landfall.engines.duckdb.writing import merge, not_from, shape_for_table, write, write_to, written_as
from landfall.errors import InvalidInput
from landfall.schema import schema_diff, table_spelling


class _SchemaRule(msgspec.Struct):
    """The `discard_row` policy as a quarantine rule: rows whose values the table's schema cannot hold."""

    expr: str
    reason: str
    columns: list[str]
    kind: str = "schema"
    action: str = "quarantine"
    label: str = "schema"


def _rule_columns(rule: Any) -> list[str]:
    k = rule.kind
    if k == "schema":
        return []  # the columns are named in the reason; a missing-column check must not apply
    if k == "not_null":
        return list(rule.not_null)
    if k == "unique":
        return list(rule.unique.columns)
    if k in ("range", "accepted_values", "regex"):
        return [getattr(rule, k).column]
    return []


def _reason_for(rule: Any) -> str:
    k = rule.kind
    if k == "schema":
        return rule.reason
    if k == "not_null":
        return "missing value (null)"
    if k == "range":
        r = rule.range
        return "out of range " + " and ".join(
            x for x in (f">= {r.min:g}" if r.min is not None else "", f"<= {r.max:g}" if r.max is not None else "") if x
        )
    if k == "accepted_values":
        return "not one of " + ", ".join(map(str, rule.accepted_values.values))
    if k == "regex":
        return f"does not match {rule.regex.pattern}"
    if k == "unique":
        return "duplicate key" + (" (or already in the table)" if rule.unique.against_table else "")
    if k == "expect":
        return f"expected {rule.expect}"
    return rule.kind


def fit_schema(cx: JobContext, view: str) -> tuple[str, list[Any]]:
    """Declared types (`schema.hints`), then the workflow's evolution policy against the table's schema:
    `evolve` adds columns and widens types (in `_finish`); `freeze` fails a file that differs, listing every
    difference; `rescue` keeps values that don't fit in a `_rescued_data` JSON column; `discard_row`
    quarantines rows that don't fit. Returns the view and extra quarantine rules (for `discard_row`)."""
    job = cx.job
    policy = job.workflow.schema_
    cols = dict(cx.describe(view))
    if spelled := table_spelling(cols, job.table_schema):  # `ID` in a table of `id`: the table's column
        view = cx.view(f"SELECT * RENAME ({', '.join(f'{q(a)} AS {q(b)}' for a, b in spelled.items())}) FROM {view}")
        renamed(cx, spelled)
        cols = dict(cx.describe(view))
    # a hinted column a file lacks is passed over (NULL in its rows, as any column it lacks); names ignore case
    spelled = {c.lower(): c for c in cols}
    if hints := {spelled[c.lower()]: t for c, t in policy.hints.items() if c.lower() in spelled}:
        hinted = {c: cast_sql(q(c), cols.get(c), sql_type(t), name=c, digits=False) for c, t in hints.items()}
        repl = ", ".join(f"{cast} AS {q(c)}" for c, cast in hinted.items())
        view = cx.view(f"SELECT * REPLACE ({repl}) FROM {view}")
        cols = dict(cx.describe(view))
    if policy.evolution == "evolve" or not job.table_schema:
        return view, []
    data = {n: arrow_type(t) for n, t in cols.items() if n not in (PATH, ROW)}
    derived = [p.name for p in job.workflow.write.partition_by if p.function]
    diff = schema_diff(data, job.table_schema, LINEAGE, derived)
    table, new, changed = diff.table, diff.new, diff.changed
    if policy.evolution == "freeze":
        diff.refuse_if_frozen(job.sources[0].key if len(job.sources) == 1 else "the batch", job.workflow.write.table)
        return view, []
    fits = {n: cast_sql(q(n), cols[n], duck_type(table[n]), try_=True) for n in changed}
    misfit = [f"({q(n)} IS NOT NULL AND {fits[n]} IS NULL)" for n in changed] + [f"{q(n)} IS NOT NULL" for n in new]
    if policy.evolution == "rescue":
        if not new and not changed:
            return view, []
        # the values rescued, by column, and the file: a column whose value fit (or is NULL) is left out
        entries = [f"CASE WHEN {q(n)} IS NOT NULL AND {fits[n]} IS NULL THEN {q(n)} END" for n in changed]
        entries = [
            f"{{'k': {lit(n)}, 'v': to_json({value})}}"
            for n, value in [*zip(changed, entries, strict=True), *((n, q(n)) for n in new)]
        ]
        keep = [
            f"{_kept(n, cols[n], table[n], fits[n])} AS {q(n)}" if n in fits else q(n) for n in cols if n not in new
        ]
        src = (
            lit(job.sources[0].key)
            if PATH not in cols
            else f"(SELECT key FROM __lf_sources s WHERE s.{q(PATH)} = v.{q(PATH)})"
        )
        entries.append(f"{{'k': '_file', 'v': to_json({src})}}")
        rescue = (
            f"CASE WHEN {' OR '.join(misfit)} THEN CAST(to_json(map_from_entries(list_filter([{', '.join(entries)}], "
            "lambda __lf_e: __lf_e.v IS NOT NULL))) AS VARCHAR) END AS _rescued_data"
        )  # every column of the batch may be new to the table: then `_rescued_data` is all it keeps
        view = cx.view(f"SELECT {', '.join([*keep, rescue])} FROM {view} v")
        return view, []
    # discard_row: rows that carry a value the table cannot hold are quarantined
    if not misfit:
        return view, []
    rule = _SchemaRule(expr=" OR ".join(misfit), reason=diff.misfit_reason(), columns=changed + new)
    return view, [rule]


def _kept(name: str, have: str, table: str, fits: str) -> str:
    """SQL of a rescued column's value where it fits the table's type (`fits`: its try cast, NULL where it does
    not); JSON in it is its text there, not the JSON (`x`, where DuckDB's cast writes `"x"`)."""
    if "JSON" not in have:
        return fits
    return f"CASE WHEN {fits} IS NOT NULL THEN {conformed(q(name), arrow_type(have), table)} END"


def validate(cx: JobContext, view: str, extra: list[Any] | None = None) -> tuple[str, str | None, dict[str, Any]]:
    """Check every rule: `fail` rules fail the file (naming the rule, the count and the first line),
    `quarantine` rows are set aside with their line, rule, column and reason, `warn` rules are counted.
    Returns the rows to write, the rows to quarantine (or None) and the counts per rule."""
    job = cx.job
    rules = list(job.workflow.validate_) + list(extra or [])
    cols = dict(cx.describe(view))
    names = [c for c in cols if c not in (PATH, ROW)]
    for rule in rules:
        wanted = _rule_columns(rule)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InvalidInput(
                f"workflow `{job.workflow.name}` rule `{rule.label}`: no column "
                + ", ".join(f"`{m}`" for m in missing)
                + "; columns are "
                + ", ".join(f"`{c}`" for c in names)
            )
    flags = [violation(cx, rule, view) for rule in rules]
    # a flag that is NULL (a NULL key `IN` the table's keys) passes: a row is either written or set aside
    select = f"SELECT *, {', '.join(f'coalesce({e}, false) AS __lf_bad{i}' for i, e in enumerate(flags))} FROM {view}"
    sums = ", ".join(f"count(*) FILTER (WHERE __lf_bad{i})" for i in range(len(rules)))
    try:  # count first, without copying the rows: clean files (the usual case) need no flagged copy
        total, *counts = cx.con.execute(f"SELECT count(*), {sums} FROM ({select})").fetchone()
        set_aside = any(n and r.action in ("quarantine", "fail") for r, n in zip(rules, counts, strict=True))
        if set_aside and ROW not in cols and len(job.sources) == 1 and not cx.plan.number_rows:
            raise NeedLines()
        flagged = cx.table(select) if set_aside else cx.view(select)
    except duckdb.Error as exc:
        raise _refused(cx, view, rules, flags, exc) from None
    key = job.sources[0].key if len(job.sources) == 1 else ", ".join(s.key for s in job.sources)
    has_row = ROW in cols
    quality: dict[str, Any] = {}
    for i, (rule, n) in enumerate(zip(rules, counts, strict=True)):
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
        quality[rule.label] = {"action": rule.action, "violations": int(n)}
        if n and rule.action == "fail":
            line = None
            if has_row:
                first_row = f"SELECT min({ROW}) AS p FROM {flagged} WHERE __lf_bad{i}"
                first = cx.con.execute(f"SELECT _line FROM {with_lines(cx, f'({first_row})', 'p')}").fetchone()[0]
                line = int(first) if first is not None else None
            where = where_in(key, line, cx.fmt)
            raise InvalidInput(
                f"{where}: rule `{rule.label}` failed for {n} of {total} rows (action: fail)", file=key, line=line
            )
    quarantined = [i for i, r in enumerate(rules) if r.action == "quarantine" and quality[r.label]["violations"]]
    keep_cols = ", ".join(q(c) for c in cols)
    if not quarantined:  # every row is written: from the rows themselves, not the flagged copy
        return view, None, quality
    bad = " OR ".join(f"__lf_bad{i}" for i in quarantined)
    rule_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(rules[i].label)}" for i in quarantined) + " END"
    named = [",".join(getattr(r, "columns", None) or _rule_columns(r)) for r in rules]
    column_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(named[i])}" for i in quarantined) + " END"
    reason_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(_reason_for(rules[i]))}" for i in quarantined) + " END"
    good = cx.view(f"SELECT {keep_cols} FROM {flagged} WHERE NOT ({bad})")
    broke = cx.view(f"SELECT * FROM {flagged} WHERE {bad}")
    if has_row:
        broke = with_lines(cx, broke, ROW, "__lf_line")
    q_view = cx.view(
        f"SELECT {', '.join(q(c) for c in cols if c != ROW)}, "
        f"CAST({'__lf_line' if has_row else 'NULL'} AS BIGINT) AS _line, "
        f"{rule_of} AS _rule, {column_of} AS _column, {reason_of} AS _reason, "
        f"now()::TIMESTAMPTZ AS _quarantined_at FROM {broke}"
    )
    quality["_quarantined"] = cx.con.execute(f"SELECT count(*) FROM {flagged} WHERE {bad}").fetchone()[0]
    return good, q_view, quality


def violation(cx: JobContext, rule: Any, view: str) -> str:
    """A SQL expression that is true for a row that breaks the rule (a NULL passes, except `not_null`)."""
    k = rule.kind
    if k == "schema":
        return f"({rule.expr})"
    if k == "not_null":
        return "(" + " OR ".join(f"{q(c)} IS NULL" for c in rule.not_null) + ")"
    if k == "range":
        r = rule.range
        text = dict(cx.describe(view)).get(r.column) == "VARCHAR"  # a stray word made it text: judge its numbers
        x = f"TRY_CAST({q(r.column)} AS DOUBLE)" if text else q(r.column)
        parts = ([f"{x} < {r.min!r}"] if r.min is not None else []) + (
            [f"{x} > {r.max!r}"] if r.max is not None else []
        )
        judged = "coalesce(" + " OR ".join(parts or ["false"]) + ", false)"
        return f"({q(r.column)} IS NOT NULL AND ({x} IS NULL OR {judged}))" if text else judged
    if k == "accepted_values":
        vals = ", ".join(lit(str(v)) for v in rule.accepted_values.values)
        return f"coalesce(CAST({q(rule.accepted_values.column)} AS VARCHAR) NOT IN ({vals}), false)"
    if k == "regex":
        return (
            f"coalesce(NOT regexp_matches(CAST({q(rule.regex.column)} AS VARCHAR), {lit(rule.regex.pattern)}), false)"
        )
    if k == "expect":
        return f"NOT coalesce(({rule.expect}), false)"
    if k == "unique":
        keys = ", ".join(q(c) for c in rule.unique.columns)
        # a semi-join on the repeated keys: about twice as fast as a window count; a NULL key passes
        within = f"coalesce(({keys}) IN (SELECT ({keys}) FROM {view} GROUP BY ALL HAVING count(*) > 1), false)"
        if rule.unique.against_table and cx.job.table_files:
            paths = "[" + ", ".join(lit(a) for a, _ in cx.job.table_files) + "]"
            hive = "true" if cx.job.partition_names else "false"
            earlier = cx.job.replaced_rows()  # a changed file's earlier rows, which this commit replaces
            # a key column a stray word made text is compared as the table holds it: a value that cannot be one
            # is in no row of the table (and fails the file as it is written, naming its line)
            cols, table = dict(cx.describe(view)), dict(cx.job.table_schema or [])
            mine = ", ".join(
                cast_sql(q(c), "VARCHAR", duck_type(table[c]), try_=True)
                if cols.get(c) == "VARCHAR" and c in table and duck_type(table[c]) != "VARCHAR"
                else q(c)
                for c in rule.unique.columns
            )
            return (
                f"({within} OR ({mine}) IN (SELECT ({keys}) FROM read_parquet({paths}, "
                f"union_by_name = true, hive_partitioning = {hive})"
                + (f" WHERE {not_from(earlier)}" if earlier else "")
                + "))"
            )
        return f"({within})"
    return "false"  # row_count: judged on the whole file


def _refused(cx: JobContext, view: str, rules: list[Any], flags: list[str], exc: Exception) -> InvalidInput:
    """The error of rules DuckDB refused: each is checked alone to name the one (its expression, and the text
    column it took for a number, with a value: a stray word makes a column of numbers text)."""
    name = cx.job.workflow.name
    for rule, flag in zip(rules, flags, strict=True):
        try:
            cx.con.execute(f"SELECT count(*) FILTER (WHERE {flag}) FROM {view}").fetchone()
        except duckdb.Error as one:
            hint = typing_hint(cx, view, rule_expressions(rule), one, "a `transform` step")
            detail = _first_line(one).rstrip(".") if hint else _first_line(one)
            return InvalidInput(f"workflow `{name}` {rule_named(rule)}: {detail}{hint}")
    return InvalidInput(f"workflow `{name}` rules: {_first_line(exc)}")


def _misfit(cx: JobContext, data: str) -> tuple[str, tuple[str, str] | None]:
    """SQL that is true for a row of quarantined `data` holding a value its table column's type cannot (a text
    column set aside from a number one), with the columns and the reason (None when every column fits)."""
    job = cx.job
    if not job.table_schema:
        return "false", None
    cols = {n: t for n, t in cx.describe(data) if n not in (PATH, ROW, "__lf_qid", "__lf_loaded")}
    diff = schema_diff({n: arrow_type(t) for n, t in cols.items()}, job.table_schema, LINEAGE, [])
    if not diff.changed:
        return "false", None
    fits = {n: cast_sql(q(n), cols[n], duck_type(diff.table[n]), try_=True) for n in diff.changed}
    misfit = " OR ".join(f"({q(n)} IS NOT NULL AND {fits[n]} IS NULL)" for n in diff.changed)
    return f"coalesce({misfit}, false)", (",".join(diff.changed), replace(diff, new=[]).misfit_reason())


def replay(cx: JobContext, files: list[str], run_id: str | None) -> Replayed:
    """Quarantined rows (of one run, or all) checked again with the workflow's current rules: the rows that
    pass are written for the table (keeping their `_source_file`; merged by key into a merge table, as loaded
    when their file was), the rest are written back for the quarantine."""
    job = cx.job
    merging = job.workflow.write.mode == "merge"
    src = cx.table(
        f"SELECT *, row_number() OVER () AS __lf_qid FROM read_parquet({_paths(files)}, union_by_name = true)"
    )
    picked = f"_run_id = {lit(run_id)}" if run_id else "true"
    meta = ["_line", "_rule", "_column", "_reason", "_quarantined_at", "_ingested_at", "_run_id", "_raw"]
    if "_raw" in dict(cx.describe(src)):  # rows that could not be parsed stay: re-land a fixed file
        picked += " AND _rule IS DISTINCT FROM 'parse'"
    cols = [c for c, _ in cx.describe(src)]
    loaded = ", _ingested_at AS __lf_loaded" if merging else ""  # when the row's file was loaded
    data = cx.view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in meta if c in cols)}){loaded} FROM {src} WHERE {picked}")
    rules = [r for r in job.workflow.validate_ if r.kind != "row_count"]
    flags = [violation(cx, r, data) for r in rules] or ["false"]
    # a row that passes the rules now but holds a value the table's column cannot (text set aside from a number
    # column) stays, its rule `schema` (before: the replay failed, blaming a file named `(quarantine)`)
    misfit, why = _misfit(cx, data)
    flagged = cx.table(
        f"SELECT *, coalesce(({' OR '.join(flags)}), false) AS __lf_bad, {misfit} AS __lf_misfit FROM {data}"
    )
    ingested = f"{lit(job.ingested_at.isoformat())}::TIMESTAMPTZ AS _ingested_at"
    good = cx.view(
        f"SELECT * EXCLUDE (__lf_bad, __lf_misfit, __lf_qid), {ingested}, {lit(job.sources[0].run_id)} "
        f"AS _run_id FROM {flagged} WHERE NOT (__lf_bad OR __lf_misfit)"
    )
    good = shape_for_table(cx, good)
    passed, kept = cx.con.execute(
        f"SELECT count(*) FILTER (WHERE NOT (__lf_bad OR __lf_misfit)), count(*) FILTER (WHERE __lf_bad OR "
        f"__lf_misfit) FROM {flagged}"
    ).fetchone()
    if not passed:
        return Replayed([], [], [], 0, int(kept))
    replaced: list[str] = []
    if merging:
        good, replaced = merge(cx, good, loaded="__lf_loaded")
    table_files = write(cx, good)
    said = ""
    if why is not None:  # the rows that stay for the table's schema now say so
        stays = f"__lf_qid IN (SELECT __lf_qid FROM {flagged} WHERE __lf_misfit AND NOT __lf_bad)"
        said = (
            " REPLACE ("
            + ", ".join(
                f"CASE WHEN {stays} THEN {lit(value)} ELSE {c} END AS {c}"
                for c, value in (("_rule", "schema"), ("_column", why[0]), ("_reason", why[1]))
            )
            + ")"
        )
    rest = cx.view(
        f"SELECT * EXCLUDE (__lf_qid){said} FROM {src} WHERE __lf_qid NOT IN "
        f"(SELECT __lf_qid FROM {flagged} WHERE NOT (__lf_bad OR __lf_misfit))"
    )
    quarantine = write_to(
        cx.con, rest, os.path.join(job.staging, "quarantine"), job.commit_id, **written_as(job.workflow)
    )
    return Replayed(table_files, quarantine, replaced, int(passed), int(kept))
