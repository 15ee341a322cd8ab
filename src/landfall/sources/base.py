"""The event-source seam: something that notices files landing and reports them as `ObjectCreated`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from landfall.events import ObjectCreated

Sink = Callable[[Sequence[ObjectCreated]], object]


class EventSource(ABC):
    """Reports landed files to a sink. `poll` is one pass; `start`/`stop` run it in the background."""

    @abstractmethod
    def poll(self) -> list[ObjectCreated]:
        """Report what is new since the last call (a listing source reports everything it sees)."""

    def start(self, sink: Sink) -> None:
        """Begin pushing events to `sink` from a background thread (sources that can)."""

    def stop(self) -> None:
        """Stop pushing events."""
