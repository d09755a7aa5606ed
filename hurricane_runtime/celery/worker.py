"""Worker bootsteps: the runtime's probe port in the worker's parent process.

``WorkerProbes`` is a step of the worker blueprint. It runs in the parent only (the pool's
children are forked from it and never run bootsteps), after the pool started and before the
consumer connects, so Kubernetes sees an honest "starting" while the broker connection is made.
It opens the probe port on a thread of its own (``probe_thread.ProbeThread``) and puts a
heartbeat on kombu's hub, the parent's event loop, whose age is the liveness answer.

While the broker is away the hub does not run: the consumer sits in kombu's reconnect loop on
the same thread. ``ReconnectWatch`` (mixed into the worker's consumer class) makes that loop
beat the same heartbeat once a second and report its errors to readiness, and caps the pause
between attempts (``reconnect_interval_max``) so readiness returns soon after the broker does.

``ConsumerProbes`` is a step of the consumer blueprint: started after the task consumers on
every (re)connection, it marks the worker consuming once the event loop runs; stopped when the
connection is lost or the worker shuts down.

Around them, small receivers: a shutdown signal turns readiness 503 before Celery acts on it,
pool children lower their priority below the parent's, and with the solo pool the task on the
loop is recorded so that liveness can tell busy from stuck.
"""

import logging
import os
import signal
import time

from celery import bootsteps
from celery.concurrency.solo import TaskPool as SoloPool
from django.conf import settings
from kombu.utils.imports import symbol_by_name

from ..config import CeleryConfig, ConfigError
from ..probe_thread import ProbeThread
from . import metrics
from .health import WorkerHealth

logger = logging.getLogger("hurricane_runtime")

# How often the hub beats; far below any sensible ``worker_loop_timeout``.
HEARTBEAT_INTERVAL = 1.0
# Warm (SIGTERM), cold (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT) and Ctrl+C.
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT)
# This process's worker probes (one worker per process); used by the signal receivers.
current: "WorkerProbes | None" = None


def fail(message: str) -> SystemExit:
    """Stop a worker or beat that cannot run with probes, with one clear line (exit code 1).

    ``SystemExit`` because it is the one exception that passes Celery's signal dispatch and
    start-up wrappers untouched, so the process ends with this message instead of running
    without probes or printing a traceback.
    """
    return SystemExit(f"hurricane_runtime.celery: {message}")


def use_celery_logging() -> None:
    """Let our log lines go through the logging Celery set up (its format, its redirects).

    ``observability.install`` attaches a handler of ours only to a logger without one; a
    ``NullHandler`` marks ours as configured, and the lines propagate to Celery's root handler.
    """
    ours = logging.getLogger("hurricane_runtime")
    if logging.getLogger().handlers and not ours.handlers:
        ours.addHandler(logging.NullHandler())


def load_config() -> CeleryConfig:
    """The Celery probe options from Django settings and the environment."""
    try:
        return CeleryConfig.load(flags={}, settings=settings)
    except ConfigError as error:
        raise fail(str(error)) from None


class WorkerProbes(bootsteps.StartStopStep):
    """Probe port, heartbeat and task metrics of a worker's parent process."""

    label = "hurricane probes"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker, **kwargs):
        global current
        super().__init__(worker, **kwargs)
        self.config = load_config()
        self.health = WorkerHealth(self.config.worker_loop_timeout)
        self.probes: ProbeThread | None = None
        self.tasks_on_loop = False  # solo pool: tasks run on the event loop's thread
        self._shutdown_seen = False
        worker.hurricane_health = self.health
        worker.consumer_cls = with_reconnect_watch(worker.consumer_cls)
        current = self

    def start(self, worker):
        use_celery_logging()
        self.probes = ProbeThread(self.config, sources=[self.health])
        if self.probes.metrics is not None:
            metrics.current = metrics.TaskMetrics(self.probes.metrics.registry, self.health)
        self.probes.state.startup_step = "connecting to the broker"
        try:
            self.probes.start()
        except OSError as error:
            raise fail(f"cannot listen on probe port {self.config.probe_port}: {error}") from None
        hub = getattr(worker, "hub", None)
        if hub is None:
            # Green pools and transports without async I/O have no hub to watch.
            self.health.watching_loop = False
            logger.warning("worker runs without an event loop: liveness does not watch it")
        else:
            self.health.heartbeat.beat()
            hub.call_repeatedly(HEARTBEAT_INTERVAL, self.health.heartbeat.beat)
        self.tasks_on_loop = isinstance(worker.pool, SoloPool)
        self._watch_shutdown_signals()
        logger.info(
            "worker probes on %s:%s (%s, %s, %s); liveness limit %gs",
            self.config.bind,
            self.config.probe_port,
            self.config.startup_probe,
            self.config.readiness_probe,
            self.config.liveness_probe,
            self.config.worker_loop_timeout,
        )

    def _watch_shutdown_signals(self) -> None:
        """Readiness 503 the moment a shutdown signal arrives, before Celery acts on it.

        Celery's own notice (``worker_shutting_down``) comes after a soft shutdown's wait,
        which can be most of the grace period. Its handlers are installed by now; ours runs
        first and hands over to them.
        """
        parent = os.getpid()
        for signum in SHUTDOWN_SIGNALS:
            celerys = signal.getsignal(signum)
            if not callable(celerys):
                continue

            def handler(signum, frame, celerys=celerys):
                if os.getpid() == parent:
                    self.shutting_down()
                celerys(signum, frame)

            signal.signal(signum, handler)

    def stop(self, worker):
        self.shutting_down()

    def terminate(self, worker):
        self.shutting_down()

    # -- called from the consumer and the signal receivers ----------------------------------

    def consuming(self) -> None:
        """The consumer's loop runs: ready, and started on the first time."""
        probes = self.probes
        if probes is not None and not probes.state.started:
            probes.call(self._mark_started)

    def starting(self, step: str) -> None:
        """What start-up waits for, shown by the startup probe until the worker consumes."""
        probes = self.probes
        if probes is not None and not probes.state.started:
            probes.state.startup_step = step

    def _mark_started(self) -> None:
        state = self.probes.state
        state.started = True
        state.startup_step = "started"
        self.probes.probes.evaluate_all()

    def shutting_down(self) -> None:
        """Warm or cold shutdown began: readiness 503 at once, the port stays open."""
        if self._shutdown_seen:
            return
        self._shutdown_seen = True
        if self.probes is None:
            self._mark_draining()
        else:  # on the probe thread, so that one evaluation sees every flag
            self.probes.call(self._mark_draining)

    def _mark_draining(self) -> None:
        self.health.shutting_down = True
        self.health.consuming_stopped("shutting down")
        if self.probes is not None:
            self.probes.state.draining = True
            self.probes.probes.evaluate_all()

    def finished(self) -> None:
        """The worker is about to exit: flush webhooks, close the port."""
        if self.probes is not None:
            self.probes.stop()


class ConsumerProbes(bootsteps.StartStopStep):
    """Marks the worker consuming once the consumer's event loop runs after a connection."""

    label = "hurricane consuming"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, consumer):
        health = getattr(consumer.controller, "hurricane_health", None)
        if health is None:
            return
        generation = health.generation

        def running():
            health.consuming_started(generation)
            if current is not None and health.consuming:
                current.consuming()

        # Queued on the hub: it runs once the loop turns, after consume() and on_ready().
        if consumer.hub is not None:
            consumer.hub.call_soon(running)
        else:
            running()

    def stop(self, consumer):
        health = getattr(consumer.controller, "hurricane_health", None)
        if health is not None and not health.shutting_down:
            health.consuming_stopped("broker connection lost, reconnecting")

    def shutdown(self, consumer):
        self.stop(consumer)


class ReconnectWatch:
    """Consumer mixin: the reconnect loop beats the heartbeat and reports to readiness."""

    def ensure_connected(self, conn):
        health = getattr(self.controller, "hurricane_health", None)
        if health is None or current is None:
            return super().ensure_connected(conn)
        interval_max = current.config.reconnect_interval_max
        ensure_connection = conn.ensure_connection

        def watched(errback=None, max_retries=None, callback=None, **options):
            def on_error(error, interval):
                health.connection_failed(error, interval)
                current.starting(health.connection_step)
                if errback is not None:
                    errback(error, interval)

            def each_second():
                health.heartbeat.beat()
                if callback is not None:
                    callback()

            options["interval_max"] = min(options.get("interval_max", 30), interval_max)
            options["interval_start"] = min(options.get("interval_start", 2), interval_max)
            return ensure_connection(on_error, max_retries, callback=each_second, **options)

        conn.ensure_connection = watched
        return super().ensure_connected(conn)


def with_reconnect_watch(consumer_cls):
    """The worker's consumer class (Celery's or the project's) with ``ReconnectWatch``."""
    cls = symbol_by_name(consumer_cls)
    if issubclass(cls, ReconnectWatch):
        return cls
    return type(cls.__name__, (ReconnectWatch, cls), {"__module__": cls.__module__})


# -- signal receivers (connected by ``install``) ------------------------------------------------


def on_worker_shutting_down(**kwargs):
    if current is not None:
        current.shutting_down()


def on_worker_shutdown(**kwargs):
    if current is not None:
        current.finished()


def on_task_prerun(sender=None, task=None, **kwargs):
    """Solo pool: the loop runs this task now (prerun fires in the process running it)."""
    probes = current
    if probes is None or not probes.tasks_on_loop or task is None:
        return
    hard_limit = (getattr(task.request, "timelimit", None) or (None,))[0]
    hard_limit = hard_limit or task.time_limit or task.app.conf.task_time_limit
    probes.health.task_on_loop = (task.name, time.monotonic(), hard_limit)


def on_task_postrun(**kwargs):
    probes = current
    if probes is not None and probes.tasks_on_loop:
        probes.health.task_on_loop = None
        probes.health.heartbeat.beat()


def on_worker_process_init(**kwargs):
    """A pool child starts: lower its priority below the parent's (``pool_niceness``)."""
    probes = current
    if probes is not None and probes.config.pool_niceness:
        os.nice(probes.config.pool_niceness)
