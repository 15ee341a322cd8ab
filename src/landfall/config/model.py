"""The config models' base, and how a YAML value becomes one: shaped, converted, checked.

A model is a `msgspec.Struct` (typed fields, unknown keys refused, `Annotated[int, Meta(ge=1)]` bounds). Turning
YAML into models takes three passes, each the model's own:

1. `_shape(value)` (a classmethod, for the whole mapping) and `_short_forms` (per key) turn the short forms users
   write into the long form, before conversion (`not_null: id` -> `[id]`, `compaction: true` -> `{}`); called
   top-down on the raw value.
2. `msgspec.convert` checks types, bounds, choices and keys, and builds the models.
3. `_check(context)` checks values and the fields together, bottom-up (a model's children are checked before
   it); it may also fill in derived values. A `ValueError` is about the model as a whole; one raised inside
   `with at("key"):` is about that key.

msgspec was chosen over pydantic for the cost of every command: building this config's 45 models took about
60 ms of pydantic's time at each start (and importing it about 50 ms more), msgspec's a few.

Every problem is a `Problem`: where (the keys and list positions from the top), what, and its kind; loading
turns them into one line each (`landfall.config.loading`).
"""

import functools
import re
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import msgspec

Loc = tuple[str | int, ...]


class Context(msgspec.Struct):
    """What checks may need beyond the model: the tables the file's workflows write (`sql` steps may join
    them; None: not known, any table name)."""

    tables: list[str] | None = None


class Model(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The base of every config model."""

    # per key, the long form of a value written in a short form (`not_null: id` -> `[id]`), applied before
    # conversion; a `ValueError` it raises is about that key
    _short_forms: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def _shape(cls, value: Any) -> Any:
        """The long form of the whole mapping, where it is written in a short form (`child_tables: [a, b]`);
        called before `_short_forms`."""
        return value

    def _check(self, context: Context) -> None:
        """Checks on the converted values (after the models inside this one are checked)."""


class Problem(msgspec.Struct, frozen=True):
    loc: Loc  # keys and list positions from the top
    message: str
    kind: Literal["value", "unknown_key", "missing"] = "value"


class Problems(ValueError):
    """A value that does not make a valid model: every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class Invalid(ValueError):
    """A problem with one key of a model (see `at`)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@contextmanager
def at(key: str) -> Iterator[None]:
    """A `ValueError` raised inside is about `key` of the model being checked."""
    try:
        yield
    except Invalid:
        raise
    except ValueError as exc:
        raise Invalid(str(exc), key) from None


def parse(model: type[Model], value: Any, context: Context | None = None) -> Any:
    """`value` (as YAML gives it) as a `model`; raises `Problems`."""
    problems: list[Problem] = []
    shaped = _shape(model, value, (), problems)
    if problems:
        raise Problems(problems)
    try:
        built = msgspec.convert(shaped, model, strict=False)
    except msgspec.ValidationError as exc:
        raise Problems([_converted_problem(str(exc), model, shaped)]) from None
    _check(built, (), context or Context(), problems)
    if problems:
        raise Problems(problems)
    return built


# --- the passes ------------------------------------------------------------------------------------------------


def _shape(tp: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        try:
            value = tp._shape(value)
            for key, long_form in tp._short_forms.items():
                if isinstance(value, dict) and key in value:
                    with at(key):
                        value = {**value, key: long_form(value[key])}
        except ValueError as exc:
            problems.append(Problem((*loc, exc.key) if isinstance(exc, Invalid) else loc, str(exc)))
            return value
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for f in fields_of(tp):
            if f.encode_name in out:
                out[f.encode_name] = _shape(f.type, out[f.encode_name], (*loc, f.encode_name), problems)
        return out
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and isinstance(value, list):
        return [_shape(args[0], v, (*loc, i), problems) for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {k: _shape(args[1], v, (*loc, str(k)), problems) for k, v in value.items()}
    if value is None:
        return value
    options = [a for a in args if a is not type(None)]
    member = options[0] if len(options) == 1 and args else _member(tp, value)
    return value if member is None else _shape(member, value, loc, problems)


def _check(obj: Any, loc: Loc, context: Context, problems: list[Problem]) -> bool:
    """Check `obj` and the models in it, children first; False when a problem was found."""
    ok = True
    if isinstance(obj, Model):
        for f in fields_of(type(obj)):
            ok = _check(getattr(obj, f.name), (*loc, f.encode_name), context, problems) and ok
        if ok:
            try:
                obj._check(context)
            except Invalid as exc:
                problems.append(Problem((*loc, exc.key), str(exc)))
                return False
            except ValueError as exc:
                problems.append(Problem(loc, str(exc)))
                return False
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            ok = _check(item, (*loc, i), context, problems) and ok
    return ok


# --- types -----------------------------------------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _member(tp: Any, value: Any) -> Any:
    """The model of a union (`Step`, `X | None`) a value is meant as: by its tag, or the one model."""
    models = [_unwrap(a) for a in typing.get_args(tp)]
    models = [m for m in models if isinstance(m, type) and issubclass(m, Model)]
    if not models or not isinstance(value, dict):
        return None
    if len(models) == 1:
        return models[0]
    tag_field = models[0].__struct_config__.tag_field
    tag = value[tag_field] if tag_field in value else next(iter(value), None) if len(value) == 1 else None
    return next((m for m in models if m.__struct_config__.tag == tag), None)  # tagged, or as YAML writes a step


def close_match(word: str, choices: list[str]) -> str | None:
    """The choice `word` was most likely meant as (a misspelling: `tabel` -> `table`), else None."""
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return found[0] if found else None


def models_in(tp: Any) -> list[type[Model]]:
    """The models a field's type holds (`list[Rule]` -> `[Rule]`)."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in models_in(arg)]


def choices_of(tp: Any) -> list[Any]:
    """The values a `Literal` in a field's type allows."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) is Literal:
        return list(typing.get_args(tp))
    return [v for arg in typing.get_args(tp) for v in choices_of(arg)]


@functools.cache
def fields_of(model: type[Model]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A model's fields: `encode_name` is the YAML key, `type` the resolved annotation (resolved once: msgspec
    resolves a class's annotations again at each call)."""
    return msgspec.structs.fields(model)


def type_at(model: type[Model], loc: Loc, value: Any) -> Any:
    """The type a value at `loc` is meant as (`value` is the whole shaped input, to tell union members apart);
    None when not known."""
    tp: Any = model
    node = value
    for item in loc:
        tp = _unwrap(tp)
        if not (isinstance(tp, type) and issubclass(tp, Model)):
            tp = _member(tp, node) or tp
        if isinstance(tp, type) and issubclass(tp, Model):
            found = next((f for f in fields_of(tp) if f.encode_name == item), None)
            if found is None:
                return None
            tp = found.type
        elif isinstance(item, int) and typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
        node = node.get(item) if isinstance(node, dict) else node[item] if _indexes(node, item) else None
    return tp


def _indexes(node: Any, item: Any) -> bool:
    return isinstance(node, list) and isinstance(item, int) and item < len(node)


# --- msgspec's messages ----------------------------------------------------------------------------------------

_PATH_ITEM = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_WHAT = {
    "int": "an integer",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _converted_problem(text: str, model: type[Model], shaped: Any) -> Problem:
    """msgspec's `<what> - at `$.a[0].b`` as a Problem, in landfall's words."""
    message, _, where = text.partition(" - at `$")
    loc: list[str | int] = []
    in_values = False
    for m in _PATH_ITEM.finditer(where.rstrip("`")):
        if m.group(1) is not None:
            loc.append(m.group(1))
        elif m.group(2) is not None:
            loc.append(int(m.group(2)))
        else:
            in_values = True  # a value of a mapping; msgspec does not say which key
    found = _value_at(shaped, loc)
    got = "" if found is _NOTHING or in_values else f"got `{_show(found)}`; "
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        return Problem((*loc, m.group(1)), "unknown key", "unknown_key")
    if m := re.fullmatch(r"Object missing required field `(.+)`", message):
        return Problem((*loc, m.group(1)), "required", "missing")
    if re.fullmatch(r"Invalid (enum )?value .*", message):
        allowed = choices_of(type_at(model, tuple(loc), shaped))
        expected = " or ".join(", ".join(f"`{_show(c)}`" for c in allowed).rsplit(", ", 1)) if allowed else ""
        return Problem(tuple(loc), got + (f"expected {expected}" if expected else message.lower()))
    if m := re.fullmatch(r"Expected `([^`]+)`(.*?)(?:, got `[^`]+`)?", message):
        kinds = [_WHAT.get(k, f"`{k}`") for k in m.group(1).split(" | ")]
        what = " or ".join(kinds) + m.group(2).replace("of length", "with length")
        return Problem(tuple(loc), ("one value: " if in_values else "") + got + f"expected {what}")
    return Problem(tuple(loc), message)


_NOTHING: Any = object()


def _value_at(data: Any, loc: list[str | int]) -> Any:
    for item in loc:
        if isinstance(data, dict) and item in data:
            data = data[item]
        elif _indexes(data, item):
            data = data[item]
        else:
            return _NOTHING
    return data


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


__all__ = [
    "Context",
    "Invalid",
    "Model",
    "Problem",
    "Problems",
    "at",
    "choices_of",
    "fields_of",
    "models_in",
    "parse",
    "type_at",
]
