"""Task metrics of a Celery worker, counted in its parent process on the shared registry.

Task signals such as ``task_success`` fire in the pool's child processes, whose counters the
parent's ``/metrics`` would never see. The parent learns every outcome through the handlers of
its ``Request`` objects (``on_accepted``, ``on_success``, ``on_failure``, ``on_retry``,
``on_timeout``), Celery's documented seam for custom request classes: ``MeteredRequest``
counts there, once per task, before handing over to Celery (also in the subclass the worker
generates per task type, whose ``on_success`` skips ``super()``). Received tasks come from the
``task_received`` signal, which fires in the parent.

Task names are label values, capped at ``MAX_TASK_NAMES`` distinct ones (later names count
under ``OVERFLOW_TASK``); active and reserved counts are read from Celery's worker state at
scrape time.
"""

import functools
import threading

from billiard.einfo import ExceptionWithTraceback
from celery.exceptions import Ignore, Retry, Terminated
from celery.worker import state as worker_state
from celery.worker.request import Request
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..metrics import NAMESPACE

MAX_TASK_NAMES = 200
OVERFLOW_TASK = "<other>"
RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
PREFIX = f"{NAMESPACE}_celery_"

# The metrics of this process's worker; set when the worker's probes start.
current: "TaskMetrics | None" = None


class TaskMetrics:
    """Counters and the runtime histogram of one worker, on the runtime's registry."""

    def __init__(self, registry, health):
        self._names: set[str] = set()
        self._lock = threading.Lock()

        def counter(name, documentation):
            return Counter(
                f"celery_tasks_{name}",
                documentation,
                ("task",),
                namespace=NAMESPACE,
                registry=registry,
            )

        self.received = counter("received", "Tasks this worker received from the broker.")
        self.started = counter("started", "Tasks a pool process started running.")
        self.succeeded = counter("succeeded", "Tasks that returned a result.")
        self.failed = counter("failed", "Tasks that raised, timed out or lost their process.")
        self.retried = counter("retried", "Tasks that asked to be retried.")
        self.runtime = Histogram(
            "celery_task_runtime_seconds",
            "Time a task ran in its pool process, successful or not.",
            ("task",),
            namespace=NAMESPACE,
            buckets=RUNTIME_BUCKETS,
            registry=registry,
        )
        registry.register(WorkerCollector(health))

    def task(self, name: str) -> str:
        """``name`` as a bounded label value."""
        if name in self._names:
            return name
        with self._lock:
            if len(self._names) < MAX_TASK_NAMES:
                self._names.add(name)
                return name
        return OVERFLOW_TASK


class WorkerCollector:
    """Gauges read at scrape time from Celery's worker state and the worker's health."""

    def __init__(self, health):
        self.health = health

    def describe(self):
        return []

    def collect(self):
        def gauge(name, documentation, value):
            return GaugeMetricFamily(PREFIX + name, documentation, value=value)

        yield gauge(
            "tasks_active", "Tasks running in the pool now.", len(worker_state.active_requests)
        )
        yield gauge(
            "tasks_reserved",
            "Tasks received and not yet finished (prefetched or running).",
            len(worker_state.reserved_requests),
        )
        yield gauge(
            "worker_consuming",
            "1 while the consumer is connected and consuming.",
            1 if self.health.consuming else 0,
        )
        yield gauge(
            "worker_loop_heartbeat_age_seconds",
            "Seconds since the worker's event loop last ran its heartbeat.",
            self.health.heartbeat.age(),
        )


def on_task_received(sender=None, request=None, **kwargs):
    """``task_received`` receiver (parent process)."""
    metrics = current
    if metrics is not None and request is not None:
        metrics.received.labels(metrics.task(request.name)).inc()


def _counted(on_success):
    """``on_success`` that first records the task's runtime and, if it succeeded, counts it."""

    @functools.wraps(on_success)
    def counted(self, failed__retval__runtime, **kwargs):
        failed, _, runtime = failed__retval__runtime
        metrics = current
        if metrics is not None and runtime is not None:
            metrics.runtime.labels(metrics.task(self.name)).observe(runtime)
        if not failed:
            self._count("succeeded")
        return on_success(self, failed__retval__runtime, **kwargs)

    return counted


class MeteredRequest(Request):
    """Celery's ``Request`` that also counts each task's start and one outcome."""

    _outcome_counted = False

    def _count(self, counter) -> None:
        metrics = current
        if metrics is None or self._outcome_counted:
            return
        self._outcome_counted = True
        getattr(metrics, counter).labels(metrics.task(self.name)).inc()

    def on_accepted(self, pid, time_accepted):
        metrics = current
        if metrics is not None:
            metrics.started.labels(metrics.task(self.name)).inc()
        return super().on_accepted(pid, time_accepted)

    on_success = _counted(Request.on_success)

    def __init_subclass__(cls, **kwargs):
        # The worker builds a subclass per task type whose on_success skips super() for
        # speed (celery.worker.request.create_request_cls): count in it too.
        super().__init_subclass__(**kwargs)
        if "on_success" in cls.__dict__:
            cls.on_success = _counted(cls.__dict__["on_success"])

    def on_retry(self, exc_info):
        self._count("retried")
        return super().on_retry(exc_info)

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        # Retries are counted by on_retry; ignored and revoked tasks did not fail.
        if not isinstance(exc, Retry | Ignore | Terminated):
            self._count("failed")
        return super().on_failure(
            exc_info, send_failed_event=send_failed_event, return_ok=return_ok
        )

    def on_timeout(self, soft, timeout):
        if not soft:
            self._count("failed")
        return super().on_timeout(soft, timeout)
