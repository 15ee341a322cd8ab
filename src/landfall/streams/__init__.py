"""Streams: records posted over HTTP (or the Firehose / Kinesis API) become landed files, exactly once.

`service.Streams` holds every configured stream; `stream.Stream` checks records (`records.py`), appends them to
its segment log (`log.py`) and flushes the log into the landing zone; `http.py` and `aws.py` are the HTTP intake.
"""

from landfall.streams.service import NoSuchStream, Streams
from landfall.streams.stream import Put, Result, Stream, Throttled

__all__ = ["NoSuchStream", "Put", "Result", "Stream", "Streams", "Throttled"]
