"""Beat's probes: the runtime's probe port in a ``celery beat`` process.

Beat has no event loop to watch, only its tick loop on the main thread: tick (send what is
due), sleep until the next entry is due, at most the scheduler's ``max_interval``. So the
last tick's age tells whether beat runs: startup turns 200 after the first tick, and
liveness 503 once no tick came for ``max_interval + beat_tick_timeout`` (a tick stuck on a
schedule database or a broker publish that never returns).

The tick is observed by wrapping the ``tick`` method of the scheduler instance at
``beat_init``, so any scheduler class works (Celery's file scheduler, django-celery-beat's
database scheduler, a project's own).
"""

import atexit
import logging

from ..probe_thread import ProbeThread
from .health import BeatHealth
from .worker import fail, load_config, use_celery_logging

logger = logging.getLogger("hurricane_runtime")

# This process's beat probes; embedded beat (``worker -B``) is not watched.
current: ProbeThread | None = None


def on_beat_init(sender=None, **kwargs):
    """``beat_init`` receiver: open the probe port and watch the scheduler's ticks."""
    global current
    service = sender
    if current is not None or service is None:
        return
    config = load_config()
    health = BeatHealth(config.beat_tick_timeout)
    scheduler = service.scheduler
    health.max_interval = scheduler.max_interval
    use_celery_logging()
    probes = ProbeThread(config, sources=[health])
    probes.state.startup_step = "waiting for the first tick"
    try:
        probes.start()
    except OSError as error:
        raise fail(f"cannot listen on probe port {config.probe_port}: {error}") from None
    current = probes
    atexit.register(probes.stop)
    tick = scheduler.tick

    def watched_tick(*args, **kwargs):
        interval = tick(*args, **kwargs)
        health.ticked()
        if health.ticks == 1:
            probes.call(_mark_started, probes)
        return interval

    scheduler.tick = watched_tick
    logger.info(
        "beat probes on %s:%s (%s, %s, %s); liveness limit %gs",
        config.bind,
        config.probe_port,
        config.startup_probe,
        config.readiness_probe,
        config.liveness_probe,
        health.limit,
    )


def _mark_started(probes: ProbeThread) -> None:
    probes.state.started = True
    probes.state.startup_step = "started"
    probes.probes.evaluate_all()
