"""S3 event notifications through SQS (the seeds' S3 -> SQS path): `sources: [listing, {sqs: {queue_url: ...}}]`.

One thread receives messages (long polling), reads the object events in them (`landfall.events.s3_notifications`:
plain, SNS-wrapped and EventBridge shapes), keeps the events under the landing zone's bucket and prefix, and
reports each object as it is now (a HEAD request: the same size, time and ETag the listing sees, so the load
history knows it as one file version whichever source reported it first). Keys are checked with
`landfall.events.safe_key`.

A message is held while its files are worked: another thread extends its visibility every third of
`visibility_seconds`, and deletes it once the latest run of every file version it named has ended: succeeded,
skipped (a duplicate), unrouted, or dead (landfall's dead-letter list then holds the file: `landfall dlq retry`
loads it again, so the message has nothing left to say). A file that fails and is retried keeps its message
hidden until its last attempt ends. If landfall stops (or dies) first, the message becomes visible again after
`visibility_seconds` and is received again by this or another host: its file version is already in the state
store, so it is held again, not loaded again.

A message that is not an S3 event notification (not JSON, another shape, a field missing) is logged with its
id and the reason, and deleted: it would fail the same way every time. Test events (`s3:TestEvent`), events that
are not object creations (removals, restores), objects outside the landing zone (a notification set on a wider
prefix), unsafe or hidden keys, and objects already gone when the message is read are logged and deleted too.

Notifications are not guaranteed (S3 may drop or delay one); the periodic listing stays on as the backfill.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from landfall.errors import ConfigError, MalformedEvent, StateError, StorageUnavailable, UnsafeKey
from landfall.events import Notification, ObjectCreated, is_hidden, s3_notifications, safe_key
from landfall.redaction import redact
from landfall.sources.base import EventSource, Sink
from landfall.sources.listing import to_event
from landfall.sources.settings import SqsOptions

if TYPE_CHECKING:
    from landfall.pipeline import Pipeline
    from landfall.runner import Outcome
    from landfall.state.base import StateStore
    from landfall.storage import Storage, StorageOptions

log = logging.getLogger("landfall.sources")

ENDED = frozenset({"succeeded", "skipped", "unrouted", "dead"})  # a file version's latest run is over
MAX_HELD = 1000  # messages held at most; receiving pauses beyond (the queue keeps the rest)
BATCH = 10  # SQS's limit per receive, delete and visibility call


@dataclass
class Held:
    """A received message whose files are not done yet."""

    message_id: str
    receipt: str
    events: list[ObjectCreated]
    extended_at: float = field(default_factory=time.monotonic)


class SqsSource(EventSource):
    """Reads S3 event notifications from one SQS queue (see the module's docstring)."""

    def __init__(
        self,
        options: SqsOptions,
        landing: Storage,
        store: StateStore,
        *,
        credentials: StorageOptions | None = None,
        nudge: threading.Event | None = None,
    ) -> None:
        if landing.protocol not in ("s3", "s3a"):
            raise ConfigError(f"source `sqs` reads S3 event notifications; {landing.label} is not on S3")
        self.options = options
        self.landing = landing
        self.store = store
        self.nudge = nudge
        self.bucket, _, prefix = landing.root.partition("/")
        self.prefix = prefix.strip("/")
        self.client = _client(options, credentials)
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def open(cls, options: Any, pipeline: Pipeline) -> SqsSource:
        return cls(
            options,
            pipeline.zones.landing,
            pipeline.store,
            credentials=pipeline.settings.storage_options,
            nudge=pipeline.work_available,
        )

    @property
    def label(self) -> str:
        return f"SQS queue `{redact(self.options.queue_url)}`"

    # --- the two threads -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Reach the queue once: a queue that does not exist or refuses these credentials fails now, with one
        line; a queue that cannot be reached is waited for by the receiving thread (True: reachable)."""
        try:
            self.client.get_queue_attributes(QueueUrl=self.options.queue_url, AttributeNames=["VisibilityTimeout"])
        except Exception as exc:
            if _unreachable(exc):
                log.warning("%s cannot be reached (%s); waiting for it", self.label, _first_line(exc))
                return
            raise ConfigError(f"{self.label}: {_first_line(exc)}; check `queue_url` and the credentials") from None

    def start(self, sink: Sink) -> None:
        self.check()
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._receive_loop, args=(sink,), name="landfall-sqs-receive", daemon=True),
            threading.Thread(target=self._keep_loop, args=(sink,), name="landfall-sqs-keep", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("reading S3 event notifications from %s", self.label)

    def stop(self) -> None:
        """Stop receiving; messages still held become visible again after their visibility timeout (their
        files are in the state store by then, so whoever receives them next only holds them)."""
        self._stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(self.options.wait_seconds + 15)
        self._threads = []

    def ended(self, outcomes: Sequence[Outcome]) -> None:
        if any(o.status in ENDED for o in outcomes):
            self._wake.set()  # look at the held messages now rather than at the next extension

    def _receive_loop(self, sink: Sink) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                if self.held_count() >= MAX_HELD:
                    self._stopping.wait(1.0)
                    continue
                events = self.poll()
                if events and not self._stopping.is_set():
                    sink(events)
                    if self.nudge is not None:
                        self.nudge.set()
                delay = 1.0
            except Exception as exc:  # a store or queue away: wait, say so, try again; never lose the thread
                if not (_unreachable(exc) or isinstance(exc, StateError | StorageUnavailable)):
                    log.exception("%s: receiving failed; trying again in %.0f s", self.label, delay)
                else:
                    log.warning("%s: %s; trying again in %.0f s", self.label, _first_line(exc), delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _keep_loop(self, sink: Sink) -> None:
        every = self.options.visibility_seconds / 3
        while not self._stopping.is_set():
            self._wake.wait(min(every, 5.0))
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.keep(sink)
            except Exception as exc:  # a missed pass only shortens the visibility a little
                log.warning("%s: %s", self.label, _first_line(exc))

    # --- one pass of each ----------------------------------------------------------------------------------

    def poll(self) -> list[ObjectCreated]:
        """Receive one batch of messages (waiting up to `wait_seconds` for one); the file versions they report.
        Messages with files are held until those files are done; the rest are deleted at once."""
        answer = self.client.receive_message(
            QueueUrl=self.options.queue_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=self.options.wait_seconds,
            VisibilityTimeout=self.options.visibility_seconds,
        )
        events: list[ObjectCreated] = []
        done: list[tuple[str, str]] = []
        for message in answer.get("Messages", []):
            mid, receipt = message["MessageId"], message["ReceiptHandle"]
            found = self._events_of(mid, message.get("Body", ""))
            if not found:
                done.append((mid, receipt))
                continue
            with self._lock:
                held = self._held.get(mid)
                if held is not None:  # received again (its visibility ran out): the newest receipt counts
                    held.receipt, held.extended_at = receipt, time.monotonic()
                else:
                    self._held[mid] = Held(mid, receipt, found)
            events.extend(found)
        self._delete(done)
        return events

    def keep(self, sink: Sink | None = None) -> None:
        """Delete the held messages whose files are done, report again the versions the state store does not
        know (the sink failed when they came), and extend the visibility of the rest when it is due."""
        with self._lock:
            held = list(self._held.values())
        if not held:
            return
        status = self.store.version_status([e for h in held for e in h.events])
        finished = [h for h in held if all(status.get(e) in ENDED for e in h.events)]
        if finished:  # the runs' ends outlive a power cut before the messages that named their files go
            self.store.sync()
        self._delete([(h.message_id, h.receipt) for h in finished])
        unknown = [e for h in held for e in h.events if e not in status]
        if unknown and sink is not None:
            sink(unknown)
        due = time.monotonic() - self.options.visibility_seconds / 3
        gone = {h.message_id for h in finished}
        self._extend([h for h in held if h.message_id not in gone and h.extended_at <= due])

    def held_count(self) -> int:
        with self._lock:
            return len(self._held)

    # --- messages -> file versions -------------------------------------------------------------------------

    def _events_of(self, message_id: str, body: str) -> list[ObjectCreated]:
        try:
            found = s3_notifications(body)
        except MalformedEvent as exc:
            shown = body if len(body) <= 300 else body[:300] + "..."
            log.warning("%s: message %s deleted: %s: %s", self.label, message_id, exc, redact(shown))
            return []
        events = []
        for n in found:
            key = self._landing_key(message_id, n)
            if key is None:
                continue
            try:
                info = self.landing.info(key)
            except FileNotFoundError:
                log.info(
                    "%s: message %s: `%s` is gone from %s; nothing to load",
                    self.label,
                    message_id,
                    key,
                    self.landing.label,
                )
                continue
            events.append(to_event(key, info))
        return events

    def _landing_key(self, message_id: str, n: Notification) -> str | None:
        """The landing key of an event's object, or None (logged) when it is not one landfall loads."""
        if not n.created:
            log.info(
                "%s: message %s: `%s` (%s) is not a created object; ignored", self.label, message_id, n.key, n.event
            )
            return None
        inside = n.bucket == self.bucket and (not self.prefix or n.key.startswith(self.prefix + "/"))
        if not inside:
            log.warning(
                "%s: message %s: `s3://%s/%s` is outside the landing zone `s3://%s`; ignored (narrow the bucket's "
                "notification to the zone's prefix)",
                self.label,
                message_id,
                n.bucket,
                n.key,
                self.landing.root,
            )
            return None
        if n.key.endswith("/"):  # a folder marker (the S3 console's "Create folder"): no file to load
            log.debug("%s: message %s: `%s` is a folder marker; ignored", self.label, message_id, n.key)
            return None
        try:
            key = safe_key(n.key[len(self.prefix) + 1 :] if self.prefix else n.key)
        except UnsafeKey as exc:
            log.warning("%s: message %s: %s; ignored", self.label, message_id, exc)
            return None
        if is_hidden(key):
            return None
        return key

    # --- SQS calls ---------------------------------------------------------------------------------------------

    def _delete(self, messages: list[tuple[str, str]]) -> None:
        for i in range(0, len(messages), BATCH):
            part = messages[i : i + BATCH]
            answer = self.client.delete_message_batch(
                QueueUrl=self.options.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": receipt} for n, (_, receipt) in enumerate(part)],
            )
            for failed in answer.get("Failed", []):  # a stale receipt: the message comes back and is held again
                log.info(
                    "%s: deleting message %s failed: %s",
                    self.label,
                    part[int(failed["Id"])][0],
                    failed.get("Message") or failed.get("Code"),
                )
            with self._lock:
                for mid, receipt in part:
                    if mid in self._held and self._held[mid].receipt == receipt:
                        del self._held[mid]

    def _extend(self, held: list[Held]) -> None:
        for i in range(0, len(held), BATCH):
            part = held[i : i + BATCH]
            answer = self.client.change_message_visibility_batch(
                QueueUrl=self.options.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": h.receipt, "VisibilityTimeout": self.options.visibility_seconds}
                    for n, h in enumerate(part)
                ],
            )
            now = time.monotonic()
            failed = {int(f["Id"]) for f in answer.get("Failed", [])}
            with self._lock:
                for n, h in enumerate(part):
                    if n in failed:  # its receipt expired: another receiver holds it now, or it comes back here
                        if self._held.get(h.message_id) is h:
                            del self._held[h.message_id]
                    else:
                        h.extended_at = now


def _client(options: SqsOptions, credentials: StorageOptions | None) -> Any:
    from landfall.errors import require

    boto3 = require("boto3", "sqs", "source `sqs`")
    from botocore.config import Config

    kw: dict[str, Any] = {}
    if options.profile is None and credentials is not None:
        if credentials.key and credentials.secret:
            kw.update(aws_access_key_id=credentials.key, aws_secret_access_key=credentials.secret)
            if credentials.token:
                kw["aws_session_token"] = credentials.token
    profile = options.profile or (credentials.profile if credentials is not None and not kw else None)
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    return session.client(
        "sqs",
        region_name=options.region_name(credentials.region if credentials is not None else None),
        endpoint_url=options.endpoint_url,
        config=Config(
            connect_timeout=5,
            read_timeout=options.wait_seconds + 10,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
        **kw,
    )


def _unreachable(exc: BaseException) -> bool:
    from landfall.storage import unreachable

    return unreachable(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])
