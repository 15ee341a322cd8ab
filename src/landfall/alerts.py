"""Alerts: webhooks told of dead letters, schema changes, runs that quarantine more than a share of their rows,
and prefixes where no file has landed for a while (`alerts:` in landfall.yaml).

`Watcher` finds what to tell by reading the state store, so it sees the runs of every worker on every host; one
process at a time sends (it holds the `alerts` lease in the state store; `landfall up` and `landfall serve` both
run the loop). `Sender` posts on a thread of its own, retrying with exponential backoff, so a slow or failing
receiver never holds up ingestion. Alerts are about what happens after the loop starts: old dead letters and
schema versions are not announced again. When another process takes the lease over (the sender died), it starts
from the lease's length before, so an alert may be sent twice around a takeover, rarely missed.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from landfall.config import AlertSettings, NoFileFor, QuarantineRateAbove, Settings
from landfall.readback import describe_change, iso_time, schema_change
from landfall.state.base import Run, StateStore

log = logging.getLogger("landfall.alerts")

#: a run's record may become visible this long after its finish time (see readback.SETTLE_SECONDS)
OVERLAP_SECONDS = 120.0
BACKOFF_CAP_SECONDS = 60.0


@dataclass
class Alert:
    """Something to tell: `event` is `dead_letter`, `schema_change`, `quarantine_rate` or `no_file`."""

    event: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def body(self, fmt: str) -> dict[str, Any]:
        """The webhook's JSON: landfall's own shape, or Slack's (`text`)."""
        if fmt == "slack":
            lines = [f"*landfall: {self.event.replace('_', ' ')}*", self.summary]
            error = self.details.get("error")
            if error:
                lines.append("```" + str(error)[:2500] + "```")
            return {"text": "\n".join(lines)}
        return {"source": "landfall", "event": self.event, "summary": self.summary, "at": iso_time(self.at),
                "details": self.details}  # fmt: skip


class Watcher:
    """What to tell, found in the state store: call `check()` every few seconds."""

    def __init__(self, settings: Settings, store: StateStore, now: float | None = None) -> None:
        self.settings = settings
        self.store = store
        self.start(store.now() if now is None else now)  # runs' times are on the store's clock

    def start(self, since: float) -> None:
        """Tell only of what happens after `since` (and mark the schema versions that exist as known)."""
        self.since = since
        self.started = since
        self._seen_runs: dict[str, float] = {}
        self._versions = {
            (t.name, v["version"]) for t in self.store.tables() for v in self.store.schema_versions(t.name)
        }
        self._quiet: dict[tuple[int, int], float] = {}  # (alert, rule) -> the last landing already told about

    def check(self, now: float | None = None) -> list[tuple[AlertSettings, Alert]]:
        now = self.store.now() if now is None else now
        out: list[tuple[AlertSettings, Alert]] = []
        runs = self._new_runs()
        changes = self._schema_changes() if self._wants("schema_change") else []
        for i, cfg in enumerate(self.settings.alerts):
            for j, rule in enumerate(cfg.on):
                if rule == "dead_letter":
                    out += [(cfg, _dead(r)) for r in runs if r.status == "dead"]
                elif rule == "schema_change":
                    out += [(cfg, a) for a in changes]
                elif isinstance(rule, QuarantineRateAbove):
                    out += [(cfg, a) for r in runs if (a := _quarantine_rate(r, rule))]
                elif isinstance(rule, NoFileFor):
                    alert = self._quiet_prefix((i, j), rule, now)
                    if alert:
                        out.append((cfg, alert))
        return out

    def _wants(self, event: str) -> bool:
        return any(event in cfg.on for cfg in self.settings.alerts)

    def _new_runs(self) -> list[Run]:
        found = []
        horizon = self.since - OVERLAP_SECONDS  # look back: a commit may show up after later ones
        while True:
            batch = self.store.ended_since(max(horizon, self.started), limit=1000)
            for run in batch:
                if run.run_id not in self._seen_runs:
                    self._seen_runs[run.run_id] = run.finished_at or 0.0
                    found.append(run)
                self.since = max(self.since, run.finished_at or 0.0)
            if len(batch) < 1000:
                break
            horizon = batch[-1].finished_at or horizon
        cutoff = self.since - 2 * OVERLAP_SECONDS
        self._seen_runs = {k: v for k, v in self._seen_runs.items() if v >= cutoff}
        return found

    def _schema_changes(self) -> list[Alert]:
        out = []
        for table in self.store.tables():
            if table.updated_at < self.since - OVERLAP_SECONDS:
                continue
            versions = self.store.schema_versions(table.name)
            prev = None
            for v in versions:
                key = (table.name, v["version"])
                if key not in self._versions:
                    self._versions.add(key)
                    if prev is not None:
                        change = schema_change(prev["schema"], v["schema"])
                        out.append(
                            Alert(
                                "schema_change",
                                f"table `{table.name}` schema version {v['version']}: {describe_change(change)}",
                                {
                                    "table": table.name,
                                    "version": v["version"],
                                    "run_id": v["run_id"],
                                    "changes": change,
                                    "schema": v["schema"],
                                },
                            )  # fmt: skip
                        )
                prev = v
        return out

    def _quiet_prefix(self, key: tuple[int, int], rule: NoFileFor, now: float) -> Alert | None:
        from landfall.maintenance import parse_duration

        limit = parse_duration(rule.no_file_for)
        last = self.store.last_landed(rule.prefix)
        since = max(last or 0.0, self.started)
        if now - since < limit or self._quiet.get(key) == since:
            return None
        self._quiet[key] = since  # once per quiet spell: a new file starts the clock again
        where = f"under `{rule.prefix}`" if rule.prefix else "in the landing zone"
        seen = f"the last one {iso_time(last)}" if last else "none since landfall started watching"
        return Alert(
            "no_file",
            f"no file has landed {where} for {rule.no_file_for} ({seen})",
            {"prefix": rule.prefix, "no_file_for": rule.no_file_for, "last_landed_at": iso_time(last)},
        )


def _dead(run: Run) -> Alert:
    return Alert(
        "dead_letter",
        f"`{run.file_key}` is dead after {run.attempt} attempt{'s' if run.attempt != 1 else ''} "
        f"(workflow `{run.workflow}`); retry it with `landfall dlq retry {run.run_id}`",
        run.to_json(),
        run.finished_at or time.time(),
    )


def _quarantine_rate(run: Run, rule: QuarantineRateAbove) -> Alert | None:
    if run.status != "succeeded" or not run.rows_in or not run.rows_quarantined:
        return None
    if rule.workflow and run.workflow != rule.workflow:
        return None
    rate = run.rows_quarantined / run.rows_in
    if rate <= rule.quarantine_rate_above:
        return None
    return Alert(
        "quarantine_rate",
        f"`{run.file_key}` set aside {run.rows_quarantined:,} of {run.rows_in:,} rows ({rate:.1%}, above "
        f"{rule.quarantine_rate_above:.1%}) into `quarantine.{run.table_name}`",
        run.to_json() | {"quarantine_rate": round(rate, 6)},
        run.finished_at or time.time(),
    )


class Sender:
    """Posts alerts from a thread of its own, retrying each with exponential backoff (1 s, 2 s, 4 s, ... up to
    60 s) for `max_attempts`; at most `capacity` wait, the oldest dropped (and logged) beyond that."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, int, AlertSettings, Alert, int]] = []
        self._seq = 0
        self._cv = threading.Condition()
        self._stopped = False
        self.sent = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="landfall-alerts-send", daemon=True)
        self._thread.start()

    def send(self, cfg: AlertSettings, alert: Alert) -> None:
        with self._cv:
            if len(self._heap) >= self.capacity:
                self._heap.sort()
                _, _, old_cfg, old, _ = self._heap.pop()
                self.dropped += 1
                log.warning("alert queue full; dropped %s for %s", old.event, _host(old_cfg.webhook))
                heapq.heapify(self._heap)
            self._push(time.monotonic(), cfg, alert, 1)

    def _push(self, due: float, cfg: AlertSettings, alert: Alert, attempt: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, cfg, alert, attempt))
        self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._stopped:
                    return
                _, _, cfg, alert, attempt = heapq.heappop(self._heap)
            error = post(cfg, alert)
            if error is None:
                self.sent += 1
                continue
            if attempt >= cfg.max_attempts:
                log.error(
                    "alert %s to %s dropped after %d attempts: %s", alert.event, _host(cfg.webhook), attempt, error
                )
                continue
            delay = min(BACKOFF_CAP_SECONDS, 2.0 ** (attempt - 1))
            log.warning("alert %s to %s failed (%s); again in %.0f s", alert.event, _host(cfg.webhook), error, delay)
            with self._cv:
                self._push(time.monotonic() + delay, cfg, alert, attempt + 1)


def post(cfg: AlertSettings, alert: Alert) -> str | None:
    """POST one alert; None when the receiver took it (2xx), else why not."""
    data = json.dumps(alert.body(cfg.format)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "landfall-alerts", **cfg.headers}
    req = urllib.request.Request(cfg.webhook, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_seconds) as resp:
            resp.read()
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _host(url: str) -> str:
    """Where a webhook goes, without its path (Slack's carries the secret)."""
    return urlsplit(url).netloc


def alert_loop(settings: Settings, store: StateStore, stop: threading.Event, holder: str) -> None:
    """Check every `alert_check_seconds` while holding the `alerts` lease; send what is found. Runs until `stop`."""
    every = settings.alert_check_seconds
    lease = max(3 * every, 15.0)
    watcher = Watcher(settings, store)
    sender = Sender()
    held = first = False
    try:
        while not stop.wait(every):
            try:
                if not store.hold("alerts", holder, lease):
                    held = False
                    continue
                if not held and first:  # taken back from another process: begin a lease's length back
                    watcher.start(store.now() - lease)
                held = first = True
                for cfg, alert in watcher.check():
                    log.info("alert: %s", alert.summary)
                    sender.send(cfg, alert)
            except Exception:  # a store hiccup must not end alerting, nor ingestion
                log.exception("alerts: check failed; trying again")
    finally:
        sender.close()
        if held:
            try:
                store.let_go("alerts", holder)
            except Exception:  # pragma: no cover - closing down
                pass
