"""State-change webhooks: POST a small JSON event when a probe changes state.

Delivery runs on one daemon thread of its own, not on the IOLoop:

- the caller (a ``state_changed`` listener on the loop) only appends to a bounded queue under a
  lock, so a dead or slow receiver can never slow the server;
- a thread keeps delivering while the loop is busy or blocked, which is exactly when a
  "liveness failed" event matters most;
- flushing on shutdown is a bounded ``wait`` on the caller's side, which a coroutine on the
  stopping loop could not offer.

One sender means events leave in the order they happened. The queue drops the oldest event
when full (the newest state is the one a receiver needs) and counts the drop. A failed attempt
is retried with exponential backoff and jitter until it succeeds, is dropped by the queue, or
is refused for good (4xx other than 408/429).
"""

import atexit
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
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import __version__
from .events import StateEvent

logger = logging.getLogger("hurricane_runtime.webhooks")

SIGNATURE_HEADER = "X-Hurricane-Signature"
TIMESTAMP_HEADER = "X-Hurricane-Timestamp"
EVENT_ID_HEADER = "X-Hurricane-Event-Id"

QUEUE_SIZE = 100
TIMEOUT = 2.0  # seconds per attempt (connect, and each read)
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
FLUSH_TIMEOUT = 3.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def pod_name() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, never above ``cap``."""
    ceiling = min(cap, base * 2 ** (failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class WebhookSender:
    """A bounded queue of events and the one thread that delivers them in order."""

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        version: str = "",
        queue_size: int = QUEUE_SIZE,
        timeout: float = TIMEOUT,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
    ):
        self.url = url
        self.secret = secret or None
        self.version = version or __version__
        self.queue_size = queue_size
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._pod = pod_name()
        self._queue: deque[dict] = deque()
        self._cond = threading.Condition()
        self._sequence = 0
        self._sending: dict | None = None
        self._sending_evicted = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._warned_full = False
        # Counters for metrics, changed under ``_cond``.
        self.delivered = 0
        self.dropped = 0
        self.failed_attempts = 0
        self.rejected = 0

    # -- producer side (any thread, never blocks on the network) ---------------------

    def on_state_event(self, event: StateEvent) -> None:
        """A ``state_changed`` listener: queue the event for delivery."""
        self.enqueue(
            {
                "type": event.probe,
                "status": "healthy" if event.healthy else "unhealthy",
                "reason": event.reason,
                "pod": self._pod,
                "version": self.version,
                "runtime_version": __version__,
                "timestamp": datetime.fromtimestamp(event.timestamp, UTC).isoformat(),
            }
        )

    def enqueue(self, payload: dict) -> None:
        with self._cond:
            self._sequence += 1
            event = {"id": str(uuid.uuid4()), "sequence": self._sequence, **payload}
            if len(self._queue) >= self.queue_size:
                evicted = self._queue.popleft()
                if evicted is self._sending:
                    self._sending_evicted = True  # counted as dropped only if it then fails
                else:
                    self.dropped += 1
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

        Returns True when every queued event was delivered (or refused for good).
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
        failures = 0
        while True:
            with self._cond:
                while not self._queue:
                    if self._stopping:
                        return
                    self._cond.wait()
                event = self._queue[0]  # peek: it stays queued (and droppable) until done
                self._sending = event
                self._sending_evicted = False
            outcome, problem = self._attempt(event)
            if outcome == "retry" and failures == 0:
                logger.warning("webhook delivery failing (%s); retrying with backoff", problem)
            elif outcome != "retry" and failures > 0:
                logger.info("webhook delivery works again after %d failed attempt(s)", failures)
            with self._cond:
                evicted = self._sending_evicted
                self._sending = None
                if outcome == "retry":
                    self.failed_attempts += 1
                    if evicted:
                        self.dropped += 1
                    failures += 1
                    if not self._stopping:
                        self._cond.wait(
                            backoff_delay(failures, self.backoff_base, self.backoff_max)
                        )
                    else:  # flushing: keep trying until flush gives up, but not in a hot loop
                        self._cond.wait(min(self.backoff_base, 0.2))
                    continue
                failures = 0
                if outcome == "delivered":
                    self.delivered += 1
                else:
                    self.rejected += 1
                if not evicted and self._queue and self._queue[0] is event:
                    self._queue.popleft()
                self._cond.notify_all()  # wake a flush waiting for an empty queue

    def _attempt(self, event: dict) -> tuple[str, str]:
        """One POST: ("delivered" | "retry" | "rejected", what went wrong)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"hurricane-runtime/{__version__}",
            EVENT_ID_HEADER: event["id"],
        }
        if self.secret:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                response.read(1024)
            return "delivered", ""
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code} {error.reason}"
            if error.code < 500 and error.code not in (408, 429):  # 3xx and 4xx: for good
                logger.error(
                    "webhook receiver refused event %s (%s); not retrying", event["id"], problem
                )
                return "rejected", problem
        except (OSError, ValueError) as error:  # refused, reset, timeout, bad URL
            problem = repr(error)
        return "retry", problem


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without body: report it instead."""

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
        for name, documentation, value in (
            ("delivered", "Webhook events the receiver accepted.", sender.delivered),
            ("dropped", "Webhook events dropped because the queue was full.", sender.dropped),
            ("rejected", "Webhook events refused for good (4xx).", sender.rejected),
            (
                "failed_attempts",
                "Webhook attempts that failed and were retried.",
                sender.failed_attempts,
            ),
        ):
            yield CounterMetricFamily(f"hurricane_webhook_{name}", documentation, value=value)
        yield GaugeMetricFamily(
            "hurricane_webhook_queue_length",
            "Webhook events waiting to be sent.",
            value=sender.queued,
        )
