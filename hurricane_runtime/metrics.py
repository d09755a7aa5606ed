"""Prometheus metrics for the serve process, exposed on the probe port.

Two kinds of metrics, chosen by what they cost:

- Request metrics (counter and histograms) change once per finished request, on the event
  loop. They are plain numbers (``RequestCounts``) read by a collector at scrape time: the
  request path is a dict lookup, two ``bisect`` calls and a few additions. prometheus-client's
  own ``Counter`` and ``Histogram`` take a lock per value and walk the buckets in Python, work
  for writers on many threads that a single writer does not need (a py-spy profile of a JSON
  view put it at about a tenth of the event loop's time).
- State metrics (in flight, waiting, busy workers, probe state, ...) are read from
  ``RuntimeState`` by a collector at scrape time and cost nothing while serving.

Label values are normalised so that no traffic can create an unbounded number of series: methods
outside a known set become ``other``, statuses become classes (``2xx``), routes are the Django
URL pattern (never the raw path) and are capped at ``MAX_ROUTES`` distinct values.

Project metrics: anything registered on prometheus-client's default registry
(``prometheus_client.REGISTRY``, what ``Counter(...)`` uses when no registry is given) is served
on the same endpoint, after ours.
"""

import platform
import threading
import time
from bisect import bisect_left

import django
import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Sample,
)
from prometheus_client.utils import floatToGoString

from . import __version__
from .events import UNMATCHED_ROUTE, RequestRecord
from .state import RuntimeState

NAMESPACE = "hurricane"

# Methods with their own label value; anything else (WebDAV verbs, garbage) is "other".
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
OTHER = "other"
# Distinct route label values kept; later new routes are counted under OVERFLOW_ROUTE. URL
# patterns are finite, so this only matters for a project that builds patterns dynamically.
MAX_ROUTES = 500
OVERFLOW_ROUTE = "<other>"

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUEUE_WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# How often the event loop is asked to run a timer; the lateness of each run is the lag.
LOOP_LAG_INTERVAL = 0.5

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class Metrics:
    """Every hurricane_ metric of one serve process, on a registry of its own."""

    def __init__(self, state: RuntimeState, project_version: str = "", include_default=True):
        self.state = state
        self.registry = CollectorRegistry(auto_describe=False)
        self._children: dict[tuple[str, int, str], tuple] = {}
        self._routes: set[str] = {UNMATCHED_ROUTE}
        self._bind_lock = threading.Lock()
        self._lag_callback = None
        self._lag_last_tick = 0.0

        registry = self.registry
        self.counts = RequestCounts()
        registry.register(RequestCollector(self.counts))
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            f"How late a {LOOP_LAG_INTERVAL}s event-loop timer ran.",
            namespace=NAMESPACE,
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.loop_lag_latest = Gauge(
            "event_loop_lag_latest_seconds",
            "Lateness of the most recent event-loop timer.",
            namespace=NAMESPACE,
            registry=registry,
        )
        Info(
            "build",
            "Versions of the runtime, Django, Python and the project.",
            namespace=NAMESPACE,
            registry=registry,
        ).info(
            {
                "version": __version__,
                "django_version": django.get_version(),
                "python_version": platform.python_version(),
                "project_version": project_version or "",
            }
        )
        registry.register(StateCollector(state))
        if include_default:
            registry.register(_DefaultRegistry())

    # -- request path -------------------------------------------------------------------

    def observe_request(self, record: RequestRecord) -> None:
        """Count one finished request; a request_finished listener (on the event loop)."""
        key = (record.method, record.status // 100, record.route)
        series = self._children.get(key)
        if series is None:
            series = self._bind(key)
        count, duration = series
        count[0] += 1
        value = record.duration
        duration.buckets[bisect_left(DURATION_BUCKETS, value)] += 1
        duration.sum += value
        counts = self.counts
        wait = record.queue_wait
        queue_wait = counts.queue_wait
        queue_wait.buckets[bisect_left(QUEUE_WAIT_BUCKETS, wait)] += 1
        queue_wait.sum += wait
        # Time after the wait: the view and the response's delivery. Delivery after the view
        # returned runs on the loop, so this slightly overstates a worker's share for big
        # bodies to slow clients; it is exact enough for a utilisation ratio.
        busy = value - wait
        if busy > 0:
            counts.worker_busy[0] += busy

    def _bind(self, key: tuple[str, int, str]) -> tuple:
        """The series of one raw key, normalised; cached only for bounded keys."""
        raw_method, status_class, raw_route = key
        method = raw_method if raw_method in KNOWN_METHODS else OTHER
        status = _STATUS_CLASSES.get(status_class, OTHER)
        with self._bind_lock:
            if raw_route in self._routes:
                route = raw_route
            elif len(self._routes) < MAX_ROUTES:
                self._routes.add(raw_route)
                route = raw_route
            else:
                route = OVERFLOW_ROUTE
            series = self.counts.series(method, status, route)
            # Only cache keys whose raw parts are themselves bounded, so that the cache cannot
            # grow with hostile methods or routes past the cap.
            if method is raw_method and route is raw_route and status != OTHER:
                self._children[key] = series
        return series

    # -- event-loop lag -----------------------------------------------------------------

    def start_loop_lag(self, io_loop) -> None:
        """Measure event-loop lag on ``io_loop``; a server_started listener (loop thread)."""
        from tornado.ioloop import PeriodicCallback

        self._lag_last_tick = time.monotonic()
        self._lag_callback = PeriodicCallback(self._lag_tick, LOOP_LAG_INTERVAL * 1000)
        self._lag_callback.start()

    def _lag_tick(self) -> None:
        now = time.monotonic()
        lag = max(0.0, now - self._lag_last_tick - LOOP_LAG_INTERVAL)
        self._lag_last_tick = now
        self.record_loop_lag(lag)

    def record_loop_lag(self, lag: float) -> None:
        self.loop_lag.observe(lag)
        self.loop_lag_latest.set(lag)

    def stop_loop_lag(self) -> None:
        """Stop the lag timer; a server_stopping listener."""
        if self._lag_callback is not None:
            self._lag_callback.stop()
            self._lag_callback = None

    # -- exposition ---------------------------------------------------------------------

    def render(self) -> tuple[int, str, bytes]:
        """The metrics endpoint: (status, content type, body); a probe route."""
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)


class Buckets:
    """One histogram's observations: a count per bucket (the last is +Inf), their sum."""

    __slots__ = ("buckets", "sum", "created")

    def __init__(self, bounds: tuple[float, ...]):
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()


class RequestCounts:
    """The request metrics as plain numbers, written by the event loop only.

    A scrape (on the probe thread) copies each list in one step under the GIL, so it never sees
    a torn number; like prometheus-client, it may see one request in the count and not yet in
    the sum.
    """

    def __init__(self):
        self.requests: dict[tuple[str, str, str], tuple[list, float]] = {}
        self.durations: dict[tuple[str, str], Buckets] = {}
        self.queue_wait = Buckets(QUEUE_WAIT_BUCKETS)
        self.worker_busy = [0.0]
        self.created = time.time()

    def series(self, method: str, status: str, route: str) -> tuple[list, Buckets]:
        """(request count cell, duration histogram) of normalised labels, created on first use."""
        requests = self.requests.get((method, status, route))
        if requests is None:
            requests = self.requests[(method, status, route)] = ([0], time.time())
        duration = self.durations.get((route, method))
        if duration is None:
            duration = self.durations[(route, method)] = Buckets(DURATION_BUCKETS)
        return requests[0], duration


class RequestCollector:
    """Exposes ``RequestCounts`` as prometheus-client's ``Counter`` and ``Histogram`` would."""

    def __init__(self, counts: RequestCounts):
        self.counts = counts

    def describe(self):
        return []

    def collect(self):
        counts = self.counts
        prefix = f"{NAMESPACE}_"
        requests = CounterMetricFamily(
            prefix + "requests",
            "Finished requests on the app port by method, status class and Django route.",
            labels=("method", "status", "route"),
        )
        for labels, (count, created) in list(counts.requests.items()):
            requests.add_metric(labels, count[0], created=created)
        yield requests
        durations = HistogramMetricFamily(
            prefix + "request_duration_seconds",
            "Time from request headers received to response finished, by route and method.",
            labels=("route", "method"),
        )
        for labels, histogram in list(counts.durations.items()):
            _add_histogram(durations, labels, histogram, DURATION_BUCKETS)
        yield durations
        queue_wait = HistogramMetricFamily(
            prefix + "request_queue_wait_seconds",
            "Time a request waited for a free worker thread.",
            labels=(),
        )
        _add_histogram(queue_wait, (), counts.queue_wait, QUEUE_WAIT_BUCKETS)
        yield queue_wait
        yield CounterMetricFamily(
            prefix + "worker_busy_seconds",
            "Seconds from a worker picking a request up to its response finishing "
            "(rate() / workers = utilisation).",
            value=counts.worker_busy[0],
            created=counts.created,
        )


def _add_histogram(family, labels, histogram: Buckets, bounds) -> None:
    buckets = list(histogram.buckets)
    total = 0
    cumulative = []
    for bound, count in zip((*bounds, float("inf")), buckets, strict=True):
        total += count
        cumulative.append((floatToGoString(bound), total))
    family.add_metric(labels, cumulative, histogram.sum)
    family.samples.append(
        Sample(
            family.name + "_created",
            dict(zip(family._labelnames, labels, strict=True)),
            histogram.created,
            None,
        )
    )


class StateCollector:
    """Gauges read from ``RuntimeState`` at scrape time, so serving pays nothing for them."""

    def __init__(self, state: RuntimeState):
        self.state = state

    def describe(self):
        return []  # names are ours alone; skip the registry's duplicate check

    def collect(self):
        state = self.state
        prefix = f"{NAMESPACE}_"

        def gauge(name, documentation, value):
            return GaugeMetricFamily(prefix + name, documentation, value=value)

        yield gauge(
            "requests_in_flight",
            "Accepted requests whose response is not finished.",
            state.in_flight,
        )
        yield gauge(
            "requests_waiting",
            "Requests waiting for a worker thread (backlog length).",
            state.waiting,
        )
        yield gauge(
            "backlog_limit", "Waiting requests at which readiness turns 503.", state.backlog_limit
        )
        yield gauge("workers_busy", "Worker threads running a Django request.", state.busy)
        yield gauge("workers", "Worker threads in the pool.", state.workers)
        yield gauge("draining", "1 while shutting down.", 1 if state.draining else 0)
        yield gauge(
            "process_start_time_seconds", "Start time of the process, Unix time.", state.started_at
        )
        probes = GaugeMetricFamily(
            prefix + "probe_healthy",
            "Last result of each probe (1 healthy, 0 failing).",
            labels=("probe",),
        )
        for probe, healthy in state.probe_healthy.items():
            probes.add_metric((probe,), 1 if healthy else 0)
        yield probes


class _DefaultRegistry:
    """Project metrics: whatever is registered on prometheus-client's default registry."""

    def describe(self):
        return []

    def collect(self):
        return prometheus_client.REGISTRY.collect()
