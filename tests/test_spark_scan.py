"""The pass over a CSV file's bytes that runs beside Spark's read (`engines.spark.lines.scan`): the lines that
hold records, so a record Spark's reader dropped is noticed (`dropped`), and the unclosed-quote check. No JVM."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "landfall[spark]"')

from landfall.engines.spark.context import Input  # noqa: E402
from landfall.engines.spark.lines import Dialect, dropped, scan  # noqa: E402


def _input(tmp_path, body: bytes, **dialect) -> Input:
    path = tmp_path / "a.csv"
    path.write_bytes(body)
    d = Dialect(**dialect)
    found: Future = Future()
    found.set_result(scan(str(path), d, count=True))
    return Input(index=0, source=None, path=str(path), spark_path=str(path), dialect=d, scan=found, checked=True)


@pytest.mark.parametrize(
    ("body", "dialect", "records"),
    [
        (b"a,b\n1,2\n3,4\n", {}, 2),
        (b"a,b\n1,2\n3,4", {}, 2),  # no line break at the end
        (b"a,b\n1,2\n\n3,4\n\n", {}, 2),  # blank lines Spark skips
        (b"a,b\r\n1,2\r\n3,4\r\n", {"newline": "\r\n"}, 2),
        (b"a,b\r\n1,2\r\n3,\n4", {"newline": "\r\n"}, 2),  # a lone `\n` is inside a line
        (b"x\ny\na,b\n1,2\n", {"skip": 2}, 1),
        (b"1,2\n3,4\n", {"header": False}, 2),
        (b"a,b\n", {}, 0),
        (b"", {}, 0),
    ],
)
def test_the_records_a_file_holds_are_counted(tmp_path, body, dialect, records):
    inp = _input(tmp_path, body, **dialect)
    assert not dropped(inp, records)  # Spark kept every record: nothing was dropped
    if records:
        assert dropped(inp, records - 1)  # one fewer kept: one was dropped


def test_a_count_is_never_too_low(tmp_path):
    """Runs of blank lines are counted; a line of spaces is not taken for blank: the count is then too high,
    which reads the file again (as text, each record checked) rather than missing a dropped record."""
    assert not dropped(_input(tmp_path, b"a,b\n\n1,2\n\n\n\n3,4\n\n"), 2)
    assert dropped(_input(tmp_path, b"a,b\n1,2\n \n\n\n3,4\n"), 2)


def test_an_unclosed_quote_is_found_with_its_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'a,b\n1,"x\n2,y\n3,z\n')
    assert scan(str(path), Dialect()).unclosed == 2
    path.write_bytes(b'a,b\n1,"x\ny"\n')
    assert scan(str(path), Dialect(), count=True).unclosed is None
