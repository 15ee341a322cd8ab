"""Column names as `normalize_names` makes them: lower snake case (`Unit Price` and `unitPrice` are
`unit_price`), Latin letters without their accents (`Größe (cm)` is `grosse_cm`, `Straße` is `strasse`), letters
of other scripts kept (`数量` stays `数量`), a name starting with a digit prefixed with `_`, and a name met twice
numbered (`unit_price_2`).

A table made before accents were taken off has such columns named the old way (`Größe` was `gr_e`); a file loaded
into it keeps that name, so the column does not split in two.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

# letters Unicode does not decompose into a base letter and a mark
_LETTERS = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    s = _CAMEL.sub(r"\1_\2", name.strip()).lower()
    s = unicodedata.normalize("NFKD", "".join(_LETTERS.get(ch, ch) for ch in s))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return _finish(re.sub(r"[\W_]+", "_", s).strip("_"))


def _ascii_snake_case(name: str) -> str:
    """How names were normalized before: every character but an ASCII letter or digit was a `_`."""
    s = _CAMEL.sub(r"\1_\2", name.strip())
    return _finish(re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower())


def _finish(s: str) -> str:
    if not s:
        return "column"
    return "_" + s if s[0].isdigit() else s


def normalized(columns: list[str], table: Collection[str] = ()) -> dict[str, str]:
    """Each column's normalized name, numbered when two come out the same; where the `table` the rows go to has
    the column under the name it was given before accents were taken off, that name."""
    seen: dict[str, int] = {}
    out = {}
    for column in columns:
        new = snake_case(column)
        if new not in table and (old := _ascii_snake_case(column)) in table:
            new = old
        if new in seen:
            seen[new] += 1
            new = f"{new}_{seen[new]}"
        else:
            seen[new] = 1
        out[column] = new
    return out
