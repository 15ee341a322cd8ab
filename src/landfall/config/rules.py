"""What a workflow checks (`validate:` data-quality rules) and how it meets columns that differ from its
table's (`schema:`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from landfall.config.common import Model, known_types
from landfall.config.steps import row_expression


class RangeSpec(Model):
    column: str
    min: float | None = None
    max: float | None = None


class AcceptedValues(Model):
    column: str
    values: list[Any]


class RegexSpec(Model):
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value


class UniqueSpec(Model):
    columns: list[str]
    against_table: bool = False  # also not already in the table


class RowCount(Model):
    min: int | None = None
    max: int | None = None


RULE_KINDS = ("not_null", "unique", "range", "accepted_values", "regex", "expect", "row_count")


class Rule(Model):
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

    _row_expression = field_validator("expect")(lambda cls, value: row_expression(value))

    @field_validator("not_null", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"columns": [value]}
        return {"columns": value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        kinds = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "each rule has exactly one of "
                + ", ".join(f"`{k}`" for k in RULE_KINDS)
                + (f"; found {', '.join(f'`{k}`' for k in kinds)}" if kinds else "")
            )
        if self.row_count is not None and self.action == "quarantine":
            raise ValueError("`row_count` judges a whole file: its action is `fail` or `warn`")
        return self

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


class SchemaPolicy(Model):
    """How a file whose columns differ from the table's is handled."""

    hints: dict[str, str] = Field(default_factory=dict)  # declared types, applied after the steps
    evolution: Literal["evolve", "rescue", "freeze", "discard_row"] = "evolve"

    _types = field_validator("hints")(lambda cls, value: known_types(value))
