"""What a workflow checks (`validate:` data-quality rules) and how it meets columns that differ from its
table's (`schema:`)."""

import re
from typing import Any, Literal

from landfall.config.common import known_types, one_or_many
from landfall.config.model import Context, Invalid, Model, at
from landfall.config.steps import row_expression


class RangeSpec(Model, kw_only=True):
    column: str
    min: float | None = None
    max: float | None = None


class AcceptedValues(Model, kw_only=True):
    column: str
    values: list[Any]


class RegexSpec(Model, kw_only=True):
    column: str
    pattern: str

    def _check(self, context: Context) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise Invalid(f"`{self.pattern}` is not a regular expression: {exc}", "pattern") from None


class UniqueSpec(Model, kw_only=True):
    columns: list[str]
    against_table: bool = False  # also not already in the table


class RowCount(Model, kw_only=True):
    min: int | None = None
    max: int | None = None


RULE_KINDS = ("not_null", "unique", "range", "accepted_values", "regex", "expect", "row_count")


class Rule(Model, kw_only=True):
    """One data-quality rule and what to do with rows (or files, for `row_count`) that break it."""

    action: Literal["fail", "quarantine", "warn"] = "fail"
    name: str | None = None
    not_null: list[str] | None = None
    unique: UniqueSpec | None = None
    range: RangeSpec | None = None
    accepted_values: AcceptedValues | None = None
    regex: RegexSpec | None = None
    expect: str | None = None
    row_count: RowCount | None = None

    _short_forms = {
        "not_null": one_or_many,
        "unique": lambda v: {"columns": one_or_many(v)} if isinstance(v, str | list) else v,
    }

    def _check(self, context: Context) -> None:
        with at("expect"):
            row_expression(self.expect)
        kinds = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "each rule has exactly one of "
                + ", ".join(f"`{k}`" for k in RULE_KINDS)
                + (f"; found {', '.join(f'`{k}`' for k in kinds)}" if kinds else "")
            )
        if self.row_count is not None and self.action == "quarantine":
            raise ValueError("`row_count` judges a whole file: its action is `fail` or `warn`")

    @property
    def kind(self) -> str:
        return next(k for k in RULE_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        arg = getattr(self, self.kind)
        if isinstance(arg, list):
            detail = ",".join(arg)
        elif isinstance(arg, str):
            detail = arg
        else:
            detail = getattr(arg, "column", None) or ",".join(getattr(arg, "columns", []) or []) or ""
        return f"{self.kind}({detail})" if detail else self.kind


class SchemaPolicy(Model, kw_only=True):
    """How a file whose columns differ from the table's is handled."""

    hints: dict[str, str] = {}  # declared types, applied after the steps
    evolution: Literal["evolve", "rescue", "freeze", "discard_row"] = "evolve"

    def _check(self, context: Context) -> None:
        with at("hints"):
            known_types(self.hints)
