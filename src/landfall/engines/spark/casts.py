"""Casts that lose nothing, on Spark: the DuckDB engine's `casts` module (whose docstring says what fits) in
Spark's columns, so that both engines take and refuse the same values. Spark's own casts round and cut as
DuckDB's do: `1.5` (a double) to BIGINT is 1, text `2024-01-03 10:30:00` to DATE is the date alone (and so is
`2024-01-03 10:00:00 x`), `1.234` to DECIMAL(10,2) is 1.23."""

from __future__ import annotations

import functools
import json
import operator
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall.engines.duckdb.casts import INT_TYPES
from landfall.engines.duckdb.stamps import NAIVE_TIME, NAIVE_TIMESTAMP
from landfall.engines.spark import translate
from landfall.engines.spark.types import TIME, catalog_type, of_duckdb, spark_type, sql_name
from landfall.schema import JSON, field_named, widens_to
from landfall.types import parse_type, type_name

if TYPE_CHECKING:
    import pyarrow as pa

    from landfall.config import ReadOptions

_INTS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_TIMES = (T.DateType, T.TimestampType, T.TimestampNTZType, *((TIME,) if TIME else ()))
_TRIMMED = (*_INTS, T.DecimalType, T.DoubleType, T.FloatType, *_TIMES)


def _text_fits(x: Column, want: T.DataType, digits: bool = True) -> Column:
    """True when the text `x` (trimmed) converts to `want` whole (`digits`: see `strict_cast`)."""
    if isinstance(want, _INTS):
        return x.rlike(r"^[+-]?[0-9]+$") & x.try_cast(want).isNotNull()
    if isinstance(want, T.DecimalType):
        scale = want.scale
        lone = rf"\.[0-9]{{1,{scale}}}0*" if scale else r"\.0+"
        number = rf"^[+-]?([0-9]+(\.[0-9]{{0,{scale}}}0*)?|{lone})$"
        return x.rlike(number) & x.try_cast(want).isNotNull()
    if isinstance(want, T.DateType):  # a date, or a timestamp at midnight
        naive, date = T.TimestampNTZType(), x.try_cast("date")
        return date.isNotNull() & x.try_cast(naive).eqNullSafe(date.cast(naive))
    if isinstance(want, T.TimestampNTZType):  # the same instant read in UTC: no offset dropped, nothing after it,
        # no more than microseconds (the cast cuts a longer fraction)
        instant = x.try_cast(T.TimestampType())  # (Spark's LTZ type: `timestamp` is NTZ in the engine's session)
        same = F.coalesce(instant == x.try_cast(T.TimestampNTZType()).cast(T.TimestampType()), F.lit(False))
        return same & ~x.rlike(r"\.[0-9]{7}")
    if isinstance(want, (T.DoubleType, T.FloatType)):
        value = x.try_cast(want)
        fits = value.isNotNull() & ~beyond_range(x, value)
        return fits & ~lost_digits(x, value) if isinstance(want, T.DoubleType) and digits else fits
    return x.try_cast(want).isNotNull()


def lost_digits(text: Column, value: Column) -> Column:
    """True where the text `text` (trimmed) is a number of more digits than its double `value` gives back: not a
    nearest number of as many significant digits to the double's exact value (`scala.math.BigDecimal.exact`; a
    tie: either). The DuckDB engine's `casts.lost_digits` says which numbers are so; Spark's own printing of a
    double (Java's `Formatter`) pads its shortest digits with zeros, and cannot say."""

    def digits(number: Column) -> Column:  # the significant digits: no sign, point, exponent or leading zero
        return F.regexp_replace(F.regexp_replace(F.regexp_replace(number, "[eE].*", ""), "[^0-9]", ""), "^0+", "")

    def differs(d: Column) -> Column:
        return F.regexp_replace(d, "0+$", "") != F.regexp_replace(written, "0+$", "")

    written = digits(text)
    n = F.length(written)
    looked = (F.length(text) > 15) & (n > 15) & value.isNotNull() & ~infinite(value)
    # (Spark evaluates a subexpression used more than once for every row, whatever guards it: an infinite double,
    # which has no exact value, never reaches the call)
    double = F.when(looked, value).otherwise(F.lit(0.0))
    exact = digits(F.call_function("reflect", F.lit("scala.math.BigDecimal"), F.lit("exact"), double))
    head, following = (
        exact.substr(F.lit(1), n),
        F.coalesce(F.nullif(exact.substr(n + 1, F.lit(1)), F.lit("")), F.lit("0")),
    )
    rest = exact.substr(n + 2, F.length(exact))
    up = F.when(n <= 38, (head.cast(T.DecimalType(38, 0)) + 1).cast(T.StringType())).otherwise(head)
    nearest = (
        F.when(following < "5", differs(head))
        .when((following > "5") | F.regexp_replace(rest, "0+$", "").rlike("."), differs(up))
        .otherwise(differs(head) & differs(up))
    )
    return F.coalesce(looked & nearest, F.lit(False))


def beyond_range(text: Column, value: Column) -> Column:
    """True where the text `text` is a number beyond the range of its cast `value` (a double or a float): Spark's
    casts and CSV parser take `1e400` for an infinity without a word. An infinity written as a word (`inf`,
    `-Infinity`) holds no digit."""
    return F.coalesce(infinite(value) & text.rlike("[0-9]"), F.lit(False))


def infinite(value: Column) -> Column:
    """True for an infinite double or float."""
    return F.abs(value) == F.lit(float("inf"))


def holds_doubles(dt: T.DataType) -> bool:
    """Whether values of `dt` are doubles or floats, or hold some at any depth (in structs, arrays, maps)."""
    if isinstance(dt, (T.DoubleType, T.FloatType)):
        return True
    if isinstance(dt, T.StructType):
        return any(holds_doubles(f.dataType) for f in dt.fields)
    if isinstance(dt, T.ArrayType):
        return holds_doubles(dt.elementType)
    if isinstance(dt, T.MapType):
        return holds_doubles(dt.valueType)
    return False


def infinite_in(value: Column, dt: T.DataType) -> Column:
    """True when `value` (of type `dt`, which `holds_doubles`) is an infinite double or float or holds one at any
    depth; false, never NULL, otherwise."""
    if isinstance(dt, (T.DoubleType, T.FloatType)):
        found = infinite(value)
    elif isinstance(dt, T.StructType):
        found = functools.reduce(
            operator.or_, [infinite_in(value[f.name], f.dataType) for f in dt.fields if holds_doubles(f.dataType)]
        )
    elif isinstance(dt, T.ArrayType):
        found = F.exists(value, lambda x: infinite_in(x, dt.elementType))
    else:  # a map: its values
        found = F.exists(F.map_values(value), lambda x: infinite_in(x, dt.valueType))
    return F.coalesce(found, F.lit(False))


def _widens(have: T.DataType, want: T.DataType) -> bool:
    try:
        return widens_to(catalog_type(have), catalog_type(want))
    except Exception:  # a type with no Arrow name: judged value by value
        return False


def fits(col: Column, have: T.DataType, want: T.DataType, digits: bool = True) -> Column | None:
    """True when the (non-NULL) value `col` of type `have` converts to `want` without loss; None when every value
    does (the same type, a widening, anything to text)."""
    if have == want or isinstance(want, T.StringType) or _widens(have, want):
        return None
    if isinstance(have, T.StringType):
        return _text_fits(F.trim(col) if isinstance(want, _TRIMMED) else col, want, digits)
    return F.coalesce(col.try_cast(want).try_cast(have) == col, F.lit(False))


def strict_cast(
    col: Column,
    have: T.DataType,
    want: T.DataType,
    *,
    try_: bool = False,
    exact: bool = True,
    name: str | None = None,
    digits: bool = True,
) -> Column:
    """`col` (of `have`) as `want`, losing nothing: a value that does not fit fails the job naming the value and
    the column, `name` (see the engine's error handling of `landfall-cast:`), or with `try_` is NULL.
    `exact=False` (the `cast:` step) casts as Spark does, but for text or a fraction to an integer, which is never
    rounded (`'2.5'` and 1.5 are not integers: Spark's cast would truncate 1.5 to 1, DuckDB's round it to 2).
    `digits=False` (a declared type): a number of more digits than a double holds is the nearest double (the DuckDB
    engine's `casts.cast_sql`)."""
    if isinstance(want, T.StringType) and isinstance(have, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)  # a struct, map or list as text is its JSON (`{"t":"x"}`), not Spark's `{x}`
    if isinstance(want, T.StringType) and isinstance(have, T.TimestampType):  # an instant as text names its zone,
        return F.concat(col.cast(want), F.lit("+00"))  # UTC's, as DuckDB writes it (`2026-01-02 08:30:00+00`)
    text = isinstance(have, T.StringType)
    rounded = isinstance(have, (T.StringType, T.DoubleType, T.FloatType, T.DecimalType))
    check = fits(col, have, want, digits) if exact or (rounded and isinstance(want, _INTS)) else None
    if check is None:
        if try_:
            return col.try_cast(want)
        if text and not isinstance(want, T.StringType):  # text that is no value of the type fails, named
            out = col.try_cast(want)
            return F.when(col.isNull() | out.isNotNull(), out).otherwise(_refused(col, want, name))
        return col.cast(want)
    value = (F.trim(col) if text and isinstance(want, _TRIMMED) else col).try_cast(want)
    if try_:
        return F.when(check, value)
    return F.when(col.isNull(), F.lit(None).cast(want)).when(check, value).otherwise(_refused(col, want, name))


def conformed(col: Column, have: str, want: str, *, name: str | None = None) -> Column:
    """A struct or list column `col` (of Arrow type `have`) as `want`, a type `schema.nested_fit` found for it:
    struct fields by name (Spark's own cast matches them by position), NULL for one `have` lacks; its values
    cast as a column's are (`strict_cast`). JSON or NULL (text on Spark) where `want` has another type fits
    only when it is null: DuckDB's detection calls the items of lists that are all empty JSON."""
    return _conformed(col, parse_type(have), parse_type(want), name)


def _conformed(col: Column, have: pa.DataType, want: pa.DataType, name: str | None) -> Column:
    import pyarrow as pa

    if have == want:
        return col
    target = spark_type(type_name(want))
    if pa.types.is_struct(have) and pa.types.is_struct(want):
        ours = {f.name: f.type for f in have}
        mine = {f.name: field_named(ours, f.name) for f in want}  # by name, as SQL names are: ignoring case
        fields = [
            (
                _conformed(col.getField(m), ours[m], f.type, name)
                if (m := mine[f.name]) is not None
                else F.lit(None).cast(spark_type(type_name(f.type)))
            ).alias(f.name)
            for f in want
        ]
        return F.when(col.isNull(), F.lit(None).cast(target)).otherwise(F.struct(*fields))
    if pa.types.is_map(have) and pa.types.is_struct(want):  # by key; a value with a key no field has fails
        known = [f.name for f in want]
        fields = [
            _conformed(col.getItem(k), have.item_type, f.type, name).alias(k) for k, f in zip(known, want, strict=True)
        ]
        others = F.filter(F.map_keys(col), lambda k: ~k.isin(known))
        more = F.when(
            F.size(others) > 3, F.concat(F.lit(" (and "), (F.size(others) - 3).cast("string"), F.lit(" more)"))
        )
        refused = F.raise_error(  # the words of the DuckDB engine's `casts.conformed`
            F.concat(
                F.lit(f"a value of column `{name}` holds key `" if name else "a value holds key `"),
                F.array_join(F.slice(others, 1, 3), "`, `"),
                F.lit("`"),
                F.coalesce(more, F.lit("")),
                F.lit(f", which the table's struct has no field for (fields: {', '.join(known)})"),
            )
        )
        return (
            F.when(col.isNull(), F.lit(None).cast(target))
            .when(F.size(others) == 0, F.struct(*fields))
            .otherwise(refused.cast(target))
        )
    if pa.types.is_struct(have) and pa.types.is_map(want):  # field by field as keys; a NULL field is no key
        entries = F.array(
            *[
                F.struct(
                    F.lit(f.name).alias("key"),
                    _conformed(col.getField(f.name), f.type, want.item_type, name).alias("value"),
                )
                for f in have
            ]
        )
        some = F.map_from_entries(F.filter(entries, lambda e: e.getField("value").isNotNull()))
        return F.when(col.isNull(), F.lit(None).cast(target)).otherwise(some)
    if pa.types.is_map(have) and pa.types.is_map(want):
        return F.transform_values(col, lambda _, v: _conformed(v, have.item_type, want.item_type, name))
    if pa.types.is_list(have) and pa.types.is_list(want):
        return F.transform(col, lambda item: _conformed(item, have.value_type, want.value_type, name))
    if type_name(want) == JSON and type_name(have) != JSON:  # a value as JSON text (`1`, `"b"`, `{"t":true}`)
        return F.when(col.isNotNull(), F.regexp_extract(F.to_json(F.array(col)), r"^\[(.*)\]$", 1))
    if (pa.types.is_null(have) or type_name(have) == JSON) and type_name(want) not in (JSON, "string"):
        return F.when(col.isNull(), F.lit(None).cast(target)).otherwise(_refused(col, target, name))
    return strict_cast(col, spark_type(type_name(have)), target, name=name)


def json_text(col: Column, have: T.DataType, name: str | None) -> Column:
    """`col` (of `have`) cast to `json` as the DuckDB engine casts it: text that is JSON as it is written (other text
    fails, naming its value), a struct, map or list as its JSON, a number or a boolean as its text, a date or a time
    as a JSON string of its text."""
    if isinstance(have, T.StringType):
        head = F.lit(f"landfall-cast:{json.dumps(name)}:")
        refused = F.raise_error(F.concat(head, col, F.lit(":JSON"))).cast(have)
        return F.when(col.isNull() | F.try_parse_json(col).isNotNull(), col).otherwise(refused)
    if isinstance(have, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)
    text = strict_cast(col, have, T.StringType())
    return F.concat(F.lit('"'), text, F.lit('"')) if isinstance(have, _TIMES) else text


def _refused(col: Column, want: T.DataType, name: str | None) -> Column:
    """Fails the job with `landfall-cast:<column as JSON, or null>:<value>:<type>` (see the engine's `_explain`)."""
    head = F.lit(f"landfall-cast:{json.dumps(name)}:")
    return F.raise_error(F.concat(head, col.cast("string"), F.lit(f":{sql_name(want)}"))).cast(want)


def declared(text: Column, duck: str, o: ReadOptions) -> Column:
    """Text as its declared type (`read.types`), losing nothing (`casts.strict_cast`); NULL when the value does
    not fit (a miss, which fails the file naming the value and its line). A date or timestamp in a declared
    format (`read.date_format`, `read.timestamp_format`) is read in it, strictly."""
    if (duck == "DATE" and o.date_format) or (duck == "TIMESTAMP" and o.timestamp_format):
        return text_as(text, duck, (o.date_format, o.timestamp_format), o.decimal_separator)
    text = decimal_point(text, duck, o.decimal_separator)
    return strict_cast(text, T.StringType(), of_duckdb(duck), try_=True, digits=False)


def decimal_point(text: Column, duck: str, decimal: str) -> Column:
    """A number of `duck`'s type written with a decimal separator other than `.` (`2,5`) as `2.5`; one written with
    `.` as nothing (NULL: a miss), as DuckDB's reader refuses it."""
    if decimal != "." and (duck in ("DOUBLE", "FLOAT") or duck.startswith("DECIMAL")):
        return F.when(~text.contains("."), F.translate(text, decimal, "."))
    return text


def text_as(text: Column, duck: str, formats: tuple[str | None, str | None], decimal: str = ".") -> Column:
    """Text to a detected type; NULL when the value does not fit (counted as a miss, never written). With a
    decimal separator other than `.`, a number written with it (`2,5`) is read, one written with `.` is not (as
    DuckDB's reader does)."""
    datefmt, tsfmt = formats
    trimmed = decimal_point(F.trim(text), duck, decimal)
    if duck in INT_TYPES:
        target = of_duckdb(duck)
        if isinstance(target, T.IntegralType):  # Spark's cast takes whole numbers only (`1.5`, `1e3`: NULL)
            return trimmed.try_cast(target)
        return F.when(trimmed.rlike(r"^[+-]?[0-9]+$"), trimmed.try_cast(target))  # a DECIMAL would round `1.5`
    if duck == "DATE":
        if not datefmt:
            return trimmed.try_cast("date")
        pattern = F.try_to_date(trimmed, translate.time_format(datefmt))
        if datefmt == "%Y-%m-%d":
            # Spark's cast is far cheaper than a pattern and agrees with it on `yyyy-M-d` with a four-digit year
            # and nothing after (it also takes `2023`, `+2023-8-1`, `20230-1-1`, a time after ` ` or `T`)
            iso = F.length(trimmed).between(8, 10) & (F.substring(trimmed, 5, 1) == "-")
            iso = iso & ~trimmed.contains(" ") & ~trimmed.contains("T")
            return F.when(iso, trimmed.try_cast("date")).otherwise(pattern)
        return pattern
    if duck == "TIMESTAMP":
        if tsfmt:
            return F.try_to_timestamp(trimmed, F.lit(translate.time_format(tsfmt)))
        # the cast drops an offset or a zone (`2024-01-03 10:00:00+05:00` as 10:00): such a value is a miss
        return F.when(trimmed.rlike(f"^{NAIVE_TIMESTAMP}$"), trimmed.try_cast(T.TimestampNTZType()))
    if duck == "TIME" and TIME:  # as DuckDB's reader takes a time: `1:2` is 01:02:00; `24:00:00`, an offset, a date
        # or a seventh digit of a second is a miss
        return F.when(trimmed.rlike(f"^{NAIVE_TIME}$"), trimmed.try_cast(TIME()))
    if duck == "TIME":
        return F.when(
            trimmed.try_cast("timestamp_ntz").isNotNull() | trimmed.rlike(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"), text
        )
    value = trimmed.try_cast(of_duckdb(duck))
    if duck in ("DOUBLE", "FLOAT"):  # a number beyond the type's range is no infinity
        return F.when(~beyond_range(trimmed, value), value)
    return value


_DAY = 86_400_000_000  # microseconds


def interval_value(col: Column, dt: T.DataType) -> Column | None:
    """An interval a step made (`ended - started`), as the DuckDB engine holds it: a difference of dates (Spark's
    `INTERVAL DAY`) as a number of days (DuckDB's `date - date` is a BIGINT), any other as DuckDB writes an
    interval as text (`1 day 10:30:00`, `-01:30:00.25`, `1 year 2 months`, `00:00:00`; Delta tables hold that
    text too). Spark's Parquet writer would store a bare count of microseconds or months. None for another type."""
    if isinstance(dt, T.YearMonthIntervalType):
        moved = F.lit("1970-01-01").cast(T.DateType()) + col  # (`extract` refuses a field the type lacks)
        total = (F.year(moved) - 1970) * 12 + F.month(moved) - 1
        months = total % 12  # the sign of `total`, as DuckDB's years and months take it
        years = ((total - months) / 12).cast("long")
        return _or_zero(col, F.concat_ws(" ", _unit(years, "year"), _unit(months, "month")))
    if not isinstance(dt, T.DayTimeIntervalType):
        return None
    micros = F.unix_micros(F.lit("1970-01-01 00:00:00").cast(T.TimestampType()) + col)  # (the session is in UTC)
    if dt.startField == dt.endField == T.DayTimeIntervalType.DAY:
        return (micros / _DAY).cast("long")
    rest = micros % _DAY  # the sign of `micros`, as DuckDB's days and time take it
    days = ((micros - rest) / _DAY).cast("long")
    a = F.abs(rest)  # under a day: hours, minutes and seconds are exact in doubles
    fraction = F.regexp_replace(F.lpad((a % 1_000_000).cast("string"), 6, "0"), "0+$", "")

    def two(micros: Column, unit: int) -> Column:
        return F.lpad(F.floor(micros / unit).cast("string"), 2, "0")

    clock = F.concat(
        F.when(rest < 0, F.lit("-")).otherwise(F.lit("")),
        two(a, 3_600_000_000),
        F.lit(":"),
        two(a % 3_600_000_000, 60_000_000),
        F.lit(":"),
        two(a % 60_000_000, 1_000_000),
        F.when(fraction != "", F.concat(F.lit("."), fraction)).otherwise(F.lit("")),
    )
    return _or_zero(col, F.concat_ws(" ", _unit(days, "day"), F.when(rest != 0, clock)))


def _or_zero(col: Column, text: Column) -> Column:
    """An interval's text, `00:00:00` (DuckDB's word for none) when it has no part; NULL for NULL."""
    return F.when(col.isNotNull(), F.when(text == "", F.lit("00:00:00")).otherwise(text))


def _unit(n: Column, name: str) -> Column:
    """`2 days`, `1 day`, `-1 year`; NULL for none (left out by `concat_ws`)."""
    plural = F.when(F.abs(n) != 1, F.lit("s")).otherwise(F.lit(""))
    return F.when(n != 0, F.concat(n.cast("string"), F.lit(f" {name}"), plural))
