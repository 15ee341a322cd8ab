"""The worker loop: lease a batch -> run it -> (the runner records and acks) -> repeat, with heartbeats."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from landfall.config import Settings, parse_size
from landfall.engines import Engine, open_engine
from landfall.errors import LeaseLost, StateError
from landfall.routing import Router, reroute_note
from landfall.runner import Outcome, Runner
from landfall.state.base import StateStore
from landfall.storage import Zones

log = logging.getLogger("landfall.worker")


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        worker_id: str,
        zones: Zones,
        *,
        on_done: Callable[[Outcome], None] | None = None,
        broken: dict[str, str] | None = None,
        hashing: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.id = worker_id
        self.zones = zones
        self._engines: dict[str, Engine] = {}
        self.runner = Runner(settings, store, self.engine, zones, on_done=on_done, broken=broken or {}, hashing=hashing)
        self._held: list[str] = []
        self._renewed = 0.0  # monotonic time just before the held runs' lease was last set (lease or heartbeat)
        self._limits = {wf.name: 1 for wf in settings.workflows if not wf.batchable}
        self._workflows = {wf.name for wf in settings.workflows}
        self._in_order, self._in_order_workflows = settings.in_order()
        self._held_lock = threading.Lock()

    def step(self) -> int:
        """Lease and run one batch; returns how many runs it handled (0: the queue had nothing available)."""
        asked = time.monotonic()
        runs = self.store.lease(
            self.id,
            limit=self.settings.batch_files,
            max_bytes=parse_size(self.settings.batch_bytes),
            lease_seconds=self.settings.lease_seconds,
            limits=self._limits,
            in_order=self._in_order,
            in_order_workflows=self._in_order_workflows,
        )
        if not runs:
            return 0
        if runs[0].workflow not in self._workflows:  # queued by a config that had it (renamed or removed since)
            self.store.release(self.id, [r.run_id for r in runs])
            moved = self.store.reroute(Router(self.settings.workflows).route, self.settings.workflows)
            log.warning("%s", reroute_note(moved))
            return len(runs)
        with self._held_lock:
            self._held, self._renewed = [r.run_id for r in runs], asked
        try:
            self.runner.run_batch(runs)
        except StateError as exc:  # not the files' fault: hand them back, untouched, once the store is back
            if not isinstance(exc, LeaseLost):
                self._hand_back([r.run_id for r in runs])
            raise
        finally:
            with self._held_lock:
                self._held = []
        return len(runs)

    def _hand_back(self, run_ids: list[str]) -> None:
        """Release runs while their lease lasts (heartbeats keep it while the store answers them); if the store
        stays away longer, the lease runs out instead and `reap` queues them again."""
        deadline = time.monotonic() + self.settings.lease_seconds
        while True:
            try:
                self.store.release(self.id, run_ids)
                return
            except StateError as exc:
                if time.monotonic() > deadline:
                    log.warning("worker %s: could not hand back %d runs (%s)", self.id, len(run_ids), exc)
                    return
                time.sleep(1.0)

    def engine(self, name: str) -> Engine:
        """This worker's engine of that name, opened on first use (Spark starts its JVM then, not before)."""
        if name not in self._engines:
            engine = open_engine(name, self.settings)
            for zone in (self.zones.tables, self.zones.quarantine):
                engine.use_storage(zone)
            self._engines[name] = engine
        return self._engines[name]

    def heartbeat(self) -> None:
        """Renew the lease of the runs this worker holds. A run the store no longer has running for this worker
        was either ended or handed back by this worker's batch (recorded, deferred, failed), or taken back by
        another process's recovery, which only happens once its lease ran out: while the last renewal is younger
        than a lease, every such run is this worker's own doing and nothing is said."""
        with self._held_lock:
            held, renewed = list(self._held), self._renewed
        if not held:
            return
        now = time.monotonic()
        lost = self.store.heartbeat(self.id, held, self.settings.lease_seconds)
        with self._held_lock:
            if self._held == held:
                self._renewed = now
        if lost and now - renewed >= self.settings.lease_seconds:
            log.warning(
                "worker %s: %d leased runs are no longer held after %.0f s without a renewed lease (lease_seconds: "
                "%g); those taken back run again elsewhere, and this worker's results for them are dropped",
                self.id,
                len(lost),
                now - renewed,
                self.settings.lease_seconds,
            )

    def held(self) -> list[str]:
        with self._held_lock:
            return list(self._held)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()


def heartbeat_loop(workers: list[Worker], stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        for w in workers:
            try:
                w.heartbeat()
            except Exception as exc:  # keep beating; a missed beat only shortens the lease
                log.warning("heartbeat failed: %s", exc)
