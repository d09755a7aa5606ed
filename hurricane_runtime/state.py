"""The runtime state that the server, the probes, the metrics and the webhooks all read.

One small object, owned by the serve process. Counters are changed on the IOLoop thread only
(the server hands them over from worker threads with ``IOLoop.add_callback``), so reads from the
loop need no lock; metric collectors read them at scrape time, which tolerates a stale value.
"""

import time


class StartupError(Exception):
    """Start-up cannot complete: the message says why (and the startup probe shows it)."""


class RuntimeState:
    """What the process is doing right now: lifecycle flags, and serve's request accounting.

    The lifecycle flags are every workload's; the request accounting (workers, backlog,
    waiting, busy, in flight) is filled by the app server and stays zero elsewhere.
    """

    def __init__(self, workers: int = 0, backlog_limit: int = 0):
        self.workers = workers
        self.backlog_limit = backlog_limit
        self.started_at = time.time()
        # Lifecycle: startup is done once start-up commands, the migration check and the
        # app listener are all finished; ``startup_error`` says why it never will be.
        self.started = False
        self.startup_error: str | None = None
        self.startup_step = "starting"  # what start-up is doing now, for the startup probe
        self.draining = False
        # Request accounting. ``waiting`` and ``busy`` are read from the worker pool once the
        # server attaches it (``pool``): workers count their own work without a thread hop.
        self.pool = None
        self.in_flight = 0  # accepted requests whose response is not finished yet
        # Last result of each probe ("startup", "readiness", "liveness"), for metrics.
        self.probe_healthy: dict[str, bool] = {
            "startup": False,
            "readiness": False,
            "liveness": True,
        }

    @property
    def waiting(self) -> int:
        """Accepted requests waiting for a worker thread."""
        return self.pool.waiting if self.pool is not None else 0

    @property
    def busy(self) -> int:
        """Worker threads running a Django request right now."""
        return self.pool.busy if self.pool is not None else 0

    @property
    def backlog_saturated(self) -> bool:
        """True when more requests wait for a worker than the backlog limit allows."""
        return self.waiting >= self.backlog_limit
