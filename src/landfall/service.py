"""The long-running side of a pipeline: `landfall up` (event sources and workers) and `landfall worker` (workers
only), until a stop event is set.

What runs where, so that intake and workers scale apart:

- intake (`up`): the event sources of `sources:` (the periodic listing, the watcher, SQS), which record landed
  file versions and queue their runs in the state store, and the alerts;
- workers (`up` with in-process workers, `worker`): threads that lease batches from the state store, run them
  and record the results, with their heartbeat, and the background compaction;
- both: recovery every `lease_seconds` (runs whose lease expired go back to the queue, leftovers of crashed
  commits are removed; it goes by runs and leases in the shared state store, so it is safe on any number of
  hosts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from landfall.errors import StateError, StateLost
from landfall.events import ObjectCreated
from landfall.recovery import recover
from landfall.redaction import redact
from landfall.registry import backend
from landfall.runner import Outcome
from landfall.sources.base import EventSource
from landfall.state.base import running
from landfall.worker import Worker, heartbeat_loop

if TYPE_CHECKING:
    from landfall.pipeline import Pipeline

log = logging.getLogger("landfall")


def run_service(
    p: Pipeline,
    stop: threading.Event,
    *,
    workers: int,
    intake: bool = True,
    watch: bool = True,
    on_done: Callable[[Outcome], None] | None = None,
    config: ConfigWatch | None = None,
) -> bool:
    """Run `p` until `stop` is set: with `intake`, the event sources of `sources:` (`watch=False` leaves the
    watcher out) and the alerts; `workers` worker threads (0: none); recovery in either case. In-flight
    batches finish before it returns. A lost state database stops it (raised); one that is away is waited for.
    With `config`, a changed landfall.yaml that loads stops it too: True then (the caller starts again on it)."""
    p.patiently(p.zones.check, stop)
    with running(p.store, p.settings.lease_seconds):  # `tables reload` and `rebuild` refused meanwhile
        p.patiently(p._recover, stop)
        return _serve(p, stop, workers=workers, intake=intake, watch=watch, on_done=on_done, config=config)


def _serve(
    p: Pipeline,
    stop: threading.Event,
    *,
    workers: int,
    intake: bool,
    watch: bool,
    on_done: Callable[[Outcome], None] | None,
    config: ConfigWatch | None,
) -> bool:
    errors: list[BaseException] = []

    def state_failed(exc: StateError) -> None:
        """A state store fault in any thread: stop for a lost database, wait out one that is away."""
        if isinstance(exc, StateLost):
            errors.append(exc)
            stop.set()
        else:
            log.warning("%s", exc)

    def sink(events: Sequence[ObjectCreated]) -> None:
        try:
            p.submit(events)
        except StateError as exc:  # the next listing (or the source's next pass) reports these files again
            state_failed(exc)

    configs = p.settings.intake() if intake else []
    sources: list[EventSource] = []
    listing = next((c for c in configs if c.name == "listing"), None)
    for source_config in configs:
        if source_config.name == "listing" or (source_config.name == "watch" and not watch):
            continue  # the listing runs in the loop below
        if source_config.name == "watch" and not p.zones.landing.is_local:
            continue
        source = backend("source", source_config.name).open(source_config.options, p)
        source.start(sink)
        sources.append(source)
    watching = any(c.name == "watch" for c in configs) and watch and p.zones.landing.is_local

    def done(o: Outcome) -> None:
        for source in sources:
            try:
                source.ended([o])
            except Exception as exc:  # a source's bookkeeping never fails a run
                log.warning("event source %s: %s", type(source).__name__, exc)
        if on_done:
            on_done(o)

    pool = p._workers(workers, done) if workers else []
    inner = threading.Event()  # the helpers stop after the workers
    helpers: list[threading.Thread] = []
    if pool:
        helpers.append(
            threading.Thread(
                target=heartbeat_loop, args=(pool, inner, p.settings.lease_seconds / 3), name="landfall-heartbeat"
            )
        )
        if any(wf.write.compaction for wf in p.settings.workflows):
            from landfall.maintenance import auto_compact_loop

            helpers.append(
                threading.Thread(
                    target=auto_compact_loop,
                    args=(p.settings, p.store, inner, p.settings.compaction_seconds, p._compacted),
                    name="landfall-compaction",
                )
            )
    for t in helpers:
        t.start()
    alerting = p.start_alerts(inner) if intake else None

    def loop(w: Worker) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                if w.step():
                    delay = 0.5
                    continue
                p.store.wait_for_work(1.0)  # woken when work is queued; no polling of the runs
            except StateError as exc:  # a lost database stops the service: never write on blindly
                state_failed(exc)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
            except Exception:
                log.exception("worker %s: unexpected error; continuing", w.id)
                stop.wait(0.5)

    threads = [
        threading.Thread(target=loop, args=(w,), name=f"landfall-worker-{i}", daemon=True) for i, w in enumerate(pool)
    ]
    for t in threads:
        t.start()
    what = [f"{len(pool)} workers"] if pool else []
    if intake:
        names = [c.name for c in configs if c.name != "watch" or watching]
        what.insert(0, f"watching {redact(p.zones.landing.url)} ({', '.join(names) or 'no sources'})")
    log.info("landfall %s: %s", "up" if intake else "worker", " with ".join(what) or "nothing to do")
    every = p.settings.reconcile_seconds
    if listing is not None and listing.options.interval_seconds:
        every = listing.options.interval_seconds
    reload = False
    try:
        listed = recovered = time.monotonic()
        if listing is not None:
            listed = 0.0
        while not stop.is_set():
            try:
                now = time.monotonic()
                if listing is not None and now - listed >= every:
                    listed = now
                    p.discover(settle_seconds=p.settings.settle_seconds, stop=stop, changed_only=watching)
                if time.monotonic() - recovered > p.settings.lease_seconds:
                    p.patiently(lambda: recover(p.settings, p.store, p.zones), stop)
                    recovered = time.monotonic()
                if config is not None and config.changed():
                    reload = True
                    break
            except StateError as exc:
                state_failed(exc)
            wait = min(every, p.settings.lease_seconds) if listing is not None else p.settings.lease_seconds / 3
            stop.wait(min(wait, CONFIG_CHECK_SECONDS) if config is not None else wait)
    finally:
        stop.set()
        p.work_available.set()
        for source in sources:
            source.stop()
        for t in threads:
            t.join()
        inner.set()
        if alerting:
            alerting.join(10)
        for t in helpers:  # a compaction in flight finishes its commit first
            t.join()
        for w in pool:
            w.close()
        log.info("landfall stopped" if not reload else "landfall stopped to start again on the changed config")
    if errors:
        raise errors[0]
    return reload


CONFIG_CHECK_SECONDS = 2.0  # how often `up` looks at landfall.yaml for changes


class ConfigWatch:
    """landfall.yaml as `up` started with it: `changed()` is True once the file changed and the new one loads
    (`load` raises `ConfigError` for a bad edit: logged once, and the running config stays)."""

    def __init__(self, path: str, load: Callable[[], object]) -> None:
        self.path, self.load = path, load
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        import os

        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed(self) -> bool:
        now = self._stamp()
        if now is None or now == self.seen:
            return False
        self.seen = now
        from landfall.errors import ConfigError

        try:
            self.load()
        except ConfigError as exc:
            log.error("%s changed but cannot be used; the running config stays: %s", self.path, exc)
            return False
        log.warning("%s changed: finishing the work in flight, then starting again on it", self.path)
        return True
