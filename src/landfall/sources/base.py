"""The event-source seam: something that notices files landing and reports them as `ObjectCreated`.

`landfall up` runs the sources of `sources:` in landfall.yaml, each found by name in `landfall.registry` and made
with `open(options, pipeline)`. A source reports file versions to a sink (`Pipeline.submit`, which records them
and queues their runs); the state store is the durable queue from then on. A source that must hold something
until a file's run ends (an SQS message) is told of runs that ended in this process through `ended`, and can
ask the state store about the rest (`StateStore.version_status`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from landfall.events import ObjectCreated

if TYPE_CHECKING:
    from landfall.pipeline import Pipeline
    from landfall.runner import Outcome

Sink = Callable[[Sequence[ObjectCreated]], object]


class EventSource(ABC):
    """Reports landed files to a sink. `poll` is one pass; `start`/`stop` run it in the background."""

    @classmethod
    def open(cls, options: Any, pipeline: Pipeline) -> EventSource:
        """The source as `sources:` configures it (`options`: its options model, or a mapping for a source of
        one's own) for `pipeline` (its landing zone, state store and settings)."""
        raise NotImplementedError(f"{cls.__name__} cannot be configured in `sources:`")

    @abstractmethod
    def poll(self) -> list[ObjectCreated]:
        """Report what is new since the last call (a listing source reports everything it sees)."""

    def start(self, sink: Sink) -> None:
        """Begin pushing events to `sink` from a background thread (sources that can)."""

    def stop(self) -> None:
        """Stop pushing events."""

    def ended(self, outcomes: Sequence[Outcome]) -> None:
        """Runs of this process that ended (succeeded, skipped or dead; a `failed` run has a retry queued).
        Sources that hold something per file (an SQS message) let go of it here."""
