"""The seam between the server and observability (metrics, webhooks, logs).

The server describes what happened with small records, which listeners only read, and hands
them to the listeners registered on ``Observers``. A listener must return quickly and never
raise: it runs on the IOLoop (state events) or at the end of a request.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("hurricane_runtime")

UNMATCHED_ROUTE = "<unmatched>"


@dataclass(slots=True)
class RequestRecord:
    """One finished HTTP request on the app port; listeners read it and never change it.

    Not ``frozen``: a frozen dataclass builds every field through ``object.__setattr__``, about
    three times the cost of a plain one, once per request on the event loop.
    """

    method: str
    route: str  # Django URL pattern ("api/items/<int:pk>/") or UNMATCHED_ROUTE; never the raw path
    path: str  # raw path, for access logs only: never a metric label
    status: int
    duration: float  # seconds from headers received to response finished
    queue_wait: float  # seconds spent waiting for a worker thread
    request_id: str
    remote_addr: str
    response_bytes: int
    traceparent: str | None = None  # the request's valid W3C traceparent header, if any


@dataclass(frozen=True, slots=True)
class StateEvent:
    """A probe changed state: startup completed or failed, readiness or liveness flipped."""

    probe: str  # "startup" | "readiness" | "liveness"
    healthy: bool
    reason: str
    timestamp: float


@dataclass
class Observers:
    """Listeners the server notifies. Register with ``observers.request_finished.append(fn)``."""

    request_finished: list[Callable[[RequestRecord], None]] = field(default_factory=list)
    # Requests on the probe port (probes, metrics): kept apart so they never count as traffic.
    probe_finished: list[Callable[[RequestRecord], None]] = field(default_factory=list)
    state_changed: list[Callable[[StateEvent], None]] = field(default_factory=list)
    # Called once on the IOLoop thread when the server is listening (for periodic tasks such
    # as event-loop lag measurement); receives the running tornado IOLoop.
    server_started: list[Callable[[object], None]] = field(default_factory=list)
    # Called once on shutdown, after the drain, so listeners can flush (webhook queue).
    server_stopping: list[Callable[[], None]] = field(default_factory=list)
    # Extra routes on the probe port, e.g. the metrics endpoint: path -> callable returning
    # (status, content_type, body). Called on the IOLoop, so it must be fast.
    probe_routes: dict[str, Callable[[], tuple[int, str, bytes]]] = field(default_factory=dict)

    def notify(self, listeners: list[Callable], *args) -> None:
        """Call every listener; a failing listener is logged, never propagated."""
        for listener in listeners:
            try:
                listener(*args)
            except Exception:  # a broken listener must not break serving
                logger.exception("observer %r failed", listener)
