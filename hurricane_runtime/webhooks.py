"""State-change webhooks in the Standard Webhooks format (standardwebhooks.com).

Every probe state change becomes one event, POSTed as JSON with the three Standard Webhooks
headers, so that receivers verify it with a library they already trust (``standardwebhooks``
for Python, the same for other languages) instead of code of ours:

- ``webhook-id``: unique per event and the same on every retry: the receiver's idempotency key;
- ``webhook-timestamp``: Unix seconds of this attempt;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per
  configured secret, separated by spaces, so a receiver can rotate its secret without a gap.

Delivery runs on one daemon thread of its own, not on the IOLoop:

- the caller (a ``state_changed`` listener on the loop) only appends to a bounded queue under a
  lock, so a dead or slow receiver can never slow the server;
- a thread keeps delivering while the loop is busy or blocked, which is exactly when a
  "liveness failed" event matters most;
- flushing on shutdown is a bounded ``wait`` on the caller's side, which a coroutine on the
  stopping loop could not offer.

One sender means events leave in the order they happened. Any 2xx is a delivery; everything
else (redirects included: they are not followed) is a failed attempt, retried with exponential
backoff and jitter, or after ``Retry-After`` when a 429 or 5xx gives one, up to ``max_attempts``.
A 410 means the endpoint is gone: nothing more is sent to it. Events that are given up on (all
attempts failed, queue full, endpoint gone) are counted by reason in
``hurricane_webhook_dropped_total``.
"""

import atexit
import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import __version__
from .events import StateEvent

logger = logging.getLogger("hurricane_runtime.webhooks")

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64  # the Standard Webhooks key size range

QUEUE_SIZE = 100
TIMEOUT = 2.0  # seconds per attempt (connect, and each read)
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 300.0  # a receiver's Retry-After is honoured up to this many seconds
MAX_ATTEMPTS = 8  # about a minute and a half of retries with the default backoff
FLUSH_TIMEOUT = 3.0

# Why an event was given up on: the label values of hurricane_webhook_dropped_total.
DROP_REASONS = ("queue_full", "retries_exhausted", "endpoint_gone")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ``ValueError`` (never echoing it) otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} must be base64") from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"a secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes, "
            f"this one holds {len(key)}"
        )
    return key


def sign(keys: Sequence[bytes], event_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per key, separated by spaces."""
    content = f"{event_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        for key in keys
    )


def event_type(probe: str) -> str:
    """``hurricane.readiness.changed`` and its siblings for startup and liveness."""
    return f"hurricane.{probe}.changed"


def pod_name() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, never above ``cap``."""
    ceiling = min(cap, base * 2 ** (failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delay-seconds or an HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebhookSender:
    """A bounded queue of events and the one thread that delivers them in order."""

    def __init__(
        self,
        url: str,
        secrets: Sequence[str] = (),
        version: str = "",
        queue_size: int = QUEUE_SIZE,
        timeout: float = TIMEOUT,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        max_attempts: int = MAX_ATTEMPTS,
        retry_after_max: float = RETRY_AFTER_MAX,
    ):
        self.url = url
        self.keys = [decode_secret(secret) for secret in secrets]
        self.version = version or __version__
        self.queue_size = queue_size
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self.retry_after_max = retry_after_max
        self._pod = pod_name()
        self._queue: deque[dict] = deque()
        self._cond = threading.Condition()
        self._sequence = 0
        self._sending: dict | None = None
        self._sending_evicted = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._warned_full = False
        self.endpoint_gone = False  # the receiver answered 410: nothing more is sent
        # Counters for metrics, changed under ``_cond``.
        self.delivered = 0
        self.failed_attempts = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    # -- producer side (any thread, never blocks on the network) ---------------------

    def on_state_event(self, event: StateEvent) -> None:
        """A ``state_changed`` listener: queue the event for delivery."""
        self.enqueue(
            event_type(event.probe),
            {
                "probe": event.probe,
                "status": "healthy" if event.healthy else "unhealthy",
                "reason": event.reason,
                "pod": self._pod,
                "version": self.version,
                "runtime_version": __version__,
            },
            datetime.fromtimestamp(event.timestamp, UTC),
        )

    def enqueue(self, type_: str, data: dict, when: datetime | None = None) -> None:
        """Queue one event: ``{"type", "timestamp", "data"}`` with ``data["sequence"]`` added."""
        with self._cond:
            if self.endpoint_gone:
                self.dropped["endpoint_gone"] += 1
                return
            self._sequence += 1
            payload = {
                "type": type_,
                "timestamp": (when or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
                "data": {**data, "sequence": self._sequence},
            }
            event = {
                "id": "msg_" + uuid.uuid4().hex,
                # Encoded once: every attempt sends (and signs) the very same bytes.
                "body": json.dumps(payload, separators=(",", ":")).encode(),
            }
            if len(self._queue) >= self.queue_size:
                evicted = self._queue.popleft()
                if evicted is self._sending:
                    self._sending_evicted = True  # counted as dropped only if it then fails
                else:
                    self.dropped["queue_full"] += 1
                if not self._warned_full:
                    self._warned_full = True
                    logger.warning(
                        "webhook queue full (%d events); dropping the oldest (logged once)",
                        self.queue_size,
                    )
            self._queue.append(event)
            self._cond.notify()
        self.start()

    def start(self) -> None:
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="hurricane-webhooks", daemon=True
                    )
                    self._thread.start()
                    # Also flush on any other way out (start-up failure, sys.exit): atexit runs
                    # before the interpreter stops daemon threads.
                    atexit.register(self._flush_at_exit)

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Wait up to ``timeout`` for the queue to drain, then stop; a server_stopping listener.

        Returns True when nothing is left queued (delivered or given up on).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._stopping = True
            self._cond.notify_all()  # cut a backoff sleep short: try once more right away
            while self._queue and self._thread is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            empty = not self._queue
        if not empty:
            logger.warning("webhook flush timed out; %d event(s) not delivered", len(self._queue))
        return empty

    def _flush_at_exit(self) -> None:
        if not self._stopping:  # the server's own flush already had its bounded wait
            self.flush()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        failures = 0  # failed attempts in a row, over events: one warning per outage
        attempts = 0  # failed attempts of the event at the head
        while True:
            with self._cond:
                while not self._queue:
                    if self._stopping:
                        return
                    self._cond.wait()
                event = self._queue[0]  # peek: it stays queued (and droppable) until done
                self._sending = event
                self._sending_evicted = False
            outcome, problem, retry_after = self._attempt(event)
            if outcome == "retry" and failures == 0:
                logger.warning("webhook delivery failing (%s); retrying with backoff", problem)
            elif outcome == "delivered" and failures > 0:
                logger.info("webhook delivery works again after %d failed attempt(s)", failures)
            with self._cond:
                evicted = self._sending_evicted
                self._sending = None
                if outcome == "retry":
                    self.failed_attempts += 1
                    failures += 1
                    attempts += 1
                    if evicted:
                        self.dropped["queue_full"] += 1
                        attempts = 0
                    elif attempts >= self.max_attempts:
                        logger.error(
                            "webhook event %s given up after %d attempts (%s)",
                            event["id"],
                            attempts,
                            problem,
                        )
                        self.dropped["retries_exhausted"] += 1
                        self._pop(event)
                        attempts = 0
                        continue
                    if not self._stopping:
                        delay = backoff_delay(failures, self.backoff_base, self.backoff_max)
                        if retry_after is not None:
                            delay = min(max(delay, retry_after), self.retry_after_max)
                        self._cond.wait(delay)
                    else:  # flushing: keep trying until flush gives up, but not in a hot loop
                        self._cond.wait(min(self.backoff_base, 0.2))
                    continue
                attempts = 0
                if outcome == "gone":
                    logger.error(
                        "webhook receiver answered 410 Gone; no more events are sent to it"
                    )
                    self.endpoint_gone = True
                    self.dropped["endpoint_gone"] += len(self._queue)
                    self._queue.clear()
                    self._cond.notify_all()
                    continue
                failures = 0
                self.delivered += 1
                if not evicted:
                    self._pop(event)

    def _pop(self, event: dict) -> None:
        """Remove a finished event from the head (under ``_cond``); wake a waiting flush."""
        if self._queue and self._queue[0] is event:
            self._queue.popleft()
        self._cond.notify_all()

    def _attempt(self, event: dict) -> tuple[str, str, float | None]:
        """One POST: ("delivered" | "retry" | "gone", what went wrong, Retry-After seconds)."""
        body = event["body"]
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"hurricane-runtime/{__version__}",
            ID_HEADER: event["id"],
            TIMESTAMP_HEADER: timestamp,
        }
        if self.keys:
            headers[SIGNATURE_HEADER] = sign(self.keys, event["id"], timestamp, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                response.read(1024)
                status = response.status
        except urllib.error.HTTPError as error:
            if error.code == 410:
                return "gone", "HTTP 410 Gone", None
            retry_after = None
            if error.code == 429 or error.code >= 500:
                retry_after = retry_after_seconds(error.headers.get("Retry-After"))
            return "retry", f"HTTP {error.code} {error.reason}", retry_after
        except (OSError, ValueError) as error:  # refused, reset, timeout, bad URL
            return "retry", repr(error), None
        if 200 <= status < 300:
            return "delivered", "", None
        return "retry", f"HTTP {status}", None  # a 1xx final answer would land here


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed attempt (and following it would turn the POST into a GET)."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class WebhookCollector:
    """Delivery counters of a ``WebhookSender``, read at scrape time."""

    def __init__(self, sender: WebhookSender):
        self.sender = sender

    def describe(self):
        return []

    def collect(self):
        sender = self.sender
        yield CounterMetricFamily(
            "hurricane_webhook_delivered",
            "Webhook events the receiver accepted (2xx).",
            value=sender.delivered,
        )
        yield CounterMetricFamily(
            "hurricane_webhook_failed_attempts",
            "Webhook attempts that failed (and were retried unless given up on).",
            value=sender.failed_attempts,
        )
        dropped = CounterMetricFamily(
            "hurricane_webhook_dropped",
            "Webhook events given up on: queue full, all attempts failed, or endpoint gone (410).",
            labels=("reason",),
        )
        for reason in DROP_REASONS:
            dropped.add_metric((reason,), sender.dropped[reason])
        yield dropped
        yield GaugeMetricFamily(
            "hurricane_webhook_queue_length",
            "Webhook events waiting to be sent.",
            value=sender.queued,
        )
        yield GaugeMetricFamily(
            "hurricane_webhook_endpoint_gone",
            "1 once the receiver answered 410 Gone: no more events are sent to it.",
            value=1 if sender.endpoint_gone else 0,
        )
