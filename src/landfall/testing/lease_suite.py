"""State store conformance, part two: idle workers waiting for work and waking, and leases on work that is not a
run (a compaction's, a commit lock, a reader's). Mixed into `StateStoreTests` (`state_suite.py`)."""

from __future__ import annotations

import threading
import time

from landfall.state import open_state
from landfall.state.base import RunResult, holding
from landfall.testing.state_fixtures import BIG, ev, route_by_prefix


class WaitAndLeaseTests:
    # --- waiting for work ------------------------------------------------------------------------------------

    def test_wait_for_work_wakes_when_work_is_queued(self, store):
        started = time.monotonic()
        assert store.wait_for_work(0.3) is False and time.monotonic() - started >= 0.29
        other = open_state(store.url)  # another process's store, as far as waking goes
        try:
            timer = threading.Timer(0.3, lambda: other.discover([ev("a/1")], route_by_prefix()))
            timer.start()
            started = time.monotonic()
            assert store.wait_for_work(10) is True
            assert time.monotonic() - started < 5
            timer.join()
            (run,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
            other.fail(run.run_id, "boom", retry_in=0.5)  # a backoff that runs out is work too
            started = time.monotonic()
            while not store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30):
                assert store.wait_for_work(10) is True
                assert time.monotonic() - started < 5
        finally:
            other.close()

    def test_wait_for_work_wakes_when_this_process_finishes_a_run(self, store):
        """An idle worker of `process` waits while another runs the last file; it hears that run end from its own
        process at once, not at its next poll or timeout (the queue is empty: `process` returns)."""
        store.discover([ev("a/1")], route_by_prefix())
        (run,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(30)))
        waiter.start()
        time.sleep(0.2)  # waiting
        store.commit(None, [RunResult(run.run_id, "succeeded", worker="w")])
        waiter.join(10)
        assert woke == [True] and store.pending() is False

    def test_idle_workers_are_not_woken_by_writes_that_queue_nothing(self, store):
        """`landfall up`: an idle worker that wakes leases (a write); were every write a wake-up, idle workers
        would wake each other for ever instead of waiting."""
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(1.5)))
        waiter.start()
        for _ in range(5):
            assert store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30) == []
            time.sleep(0.05)
        waiter.join(10)
        assert woke == [False]

    # --- leases on work that is not a run --------------------------------------------------------------------

    def test_leases_exclude_other_holders_until_let_go_or_expired(self, store):
        assert store.hold("maintain:t", "o1", 60) and store.hold("maintain:t", "o1", 60)  # renewing is fine
        assert not store.hold("maintain:t", "o2", 60)
        assert store.holders() == {"o1"}
        store.let_go("maintain:t", "o2")  # not the holder: nothing happens
        assert store.holders() == {"o1"}
        store.let_go("maintain:t", "o1")
        assert store.holders() == set() and store.hold("maintain:t", "o2", 0.05)
        time.sleep(0.1)  # expired: no longer a holder, and another may take it
        assert store.holders() == set() and store.hold("maintain:t", "o3", 60)
        with holding(store, "maintain:u", "o4", seconds=0.3) as held:
            assert held
            time.sleep(0.5)  # renewed in the background
            assert "o4" in store.holders()
        assert "o4" not in store.holders()
        with holding(store, "maintain:t", "o5") as held:
            assert not held

    def test_a_lease_that_ran_out_is_lost_not_renewed(self, store):
        assert store.hold("maintain:t", "o1", 60) and store.renew("maintain:t", "o1", 0.05)
        assert not store.renew("maintain:t", "o2", 60)  # not its lease
        assert not store.renew("maintain:none", "o1", 60)  # never held
        time.sleep(0.1)
        assert not store.renew("maintain:t", "o1", 60) and store.holders() == set()
        with holding(store, "maintain:u", "o4", seconds=0.3, fenced=True) as held:
            assert held
            time.sleep(0.5)  # renewed in the background while it lasts
            assert "o4" in store.holders()
        assert "o4" not in store.holders()

    def test_one_holder_wins_a_race_for_a_lease(self, store):
        won: list[str] = []

        def take(name: str) -> None:
            if store.hold("maintain:race", name, 60):
                won.append(name)

        threads = [threading.Thread(target=take, args=(f"o{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and store.holders() == set(won)
