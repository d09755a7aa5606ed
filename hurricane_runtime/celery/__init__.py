"""Kubernetes probes, metrics and state-change webhooks for Celery workers and beat.

One line in the project's Celery app::

    app = Celery("myproject")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    hurricane_runtime.celery.install(app)

and every ``celery worker`` and ``celery beat`` process of that app answers the runtime's
probes (same port option, paths, JSON answers and ``/metrics`` as ``serve``; see
``docs/celery.md``). Nothing happens in other processes that import the app (the web server,
``celery inspect``): the worker's part is a bootstep, beat's a ``beat_init`` receiver.
"""

import logging

from celery import signals

from . import beat, broker, metrics, worker

logger = logging.getLogger("hurricane_runtime")

DEFAULT_REQUEST = "celery.worker.request:Request"
METERED_REQUEST = "hurricane_runtime.celery.metrics:MeteredRequest"

__all__ = ["install"]


def install(app) -> None:
    """Give every worker and beat process of ``app`` the runtime's probe port."""
    app.steps["worker"].add(worker.WorkerProbes)
    app.steps["consumer"].add(worker.ConsumerProbes)
    # Task metrics are counted by the request objects of the worker's parent process.
    if app.Task.Request == DEFAULT_REQUEST:
        app.Task.Request = METERED_REQUEST
    else:
        logger.warning(
            "the app's task class uses its own Request (%s): task outcome metrics need "
            "hurricane_runtime.celery.metrics.MeteredRequest as its base",
            app.Task.Request,
        )
    signals.import_modules.connect(broker.check_broker, weak=False)
    signals.beat_init.connect(beat.on_beat_init, weak=False)
    signals.task_received.connect(metrics.on_task_received, weak=False)
    signals.worker_process_init.connect(worker.on_worker_process_init, weak=False)
    signals.task_prerun.connect(worker.on_task_prerun, weak=False)
    signals.task_postrun.connect(worker.on_task_postrun, weak=False)
    signals.worker_shutting_down.connect(worker.on_worker_shutting_down, weak=False)
    signals.worker_shutdown.connect(worker.on_worker_shutdown, weak=False)
