"""What makes a Celery worker's or beat's probes fail: two small health sources.

Both are read by ``probes.Probes`` on the probe thread and written by Celery's main thread
(the shutdown flags by the probe thread, together with the runtime's draining flag). Every
field is a single attribute assignment (atomic under the GIL), so neither side locks, and a
probe never waits for the main thread: that is what lets liveness see it stuck.

Worker:

- readiness: 503 unless the consumer is connected and its event loop is consuming; the
  reason says what the broker connection is doing (connecting, the last error);
- liveness: 503 when the worker's event loop (kombu's hub in the parent process, which also
  runs the reconnect loop while the broker is away) has not beaten for
  ``worker_loop_timeout``. Tasks run in the pool's children and never delay this loop, and
  no broker round trip is involved, so a broker outage or a long task keeps liveness 200.
  With the solo pool a task runs on the loop itself: the loop counts as busy, not stuck,
  until the task overruns its hard time limit (solo does not enforce it) by the same margin.

Beat: started after its first tick; liveness 503 when the last tick is older than the
scheduler's maximum loop interval plus ``beat_tick_timeout``.
"""

import time

from ..heartbeat import Heartbeat


class WorkerHealth:
    """Health source of a worker's parent process."""

    def __init__(self, loop_timeout: float):
        self.loop_timeout = loop_timeout
        self.heartbeat = Heartbeat()
        self.watching_loop = True  # False when the worker runs without kombu's hub
        self.consuming = False
        self.connection_step = "connecting to the broker"
        self.shutting_down = False
        # Solo pool only: the task running on the loop now, (name, monotonic start, limit).
        self.task_on_loop: tuple[str, float, float | None] | None = None
        # Bumped whenever consuming stops, so a "consuming" mark queued for a connection that
        # failed before its loop ran cannot claim the next one.
        self.generation = 0

    # -- written by Celery's main thread (shutdown: the probe thread) ----------------------

    def consuming_started(self, generation: int) -> None:
        if generation == self.generation and not self.shutting_down:
            self.consuming = True
            self.connection_step = "consuming"

    def consuming_stopped(self, why: str) -> None:
        self.consuming = False
        self.generation += 1
        self.connection_step = why

    def connection_failed(self, error: BaseException, retry_in: float) -> None:
        self.consuming = False
        text = str(error).strip() or repr(error)
        self.connection_step = f"broker unreachable: {text} (next attempt in {retry_in:g}s)"

    # -- read by the probes ----------------------------------------------------------------

    def readiness_reasons(self) -> list[str]:
        if self.consuming:
            return []
        return [f"not consuming: {self.connection_step}"]

    def liveness_reasons(self) -> list[str]:
        # While shutting down the loop stops on purpose (the pool drains); the grace period
        # bounds that, not liveness.
        if not self.watching_loop or self.shutting_down:
            return []
        age = self.heartbeat.age()
        if age <= self.loop_timeout:
            return []
        task = self.task_on_loop
        if task is None:
            return [
                f"worker event loop stuck: no heartbeat for {age:.1f}s "
                f"(limit {self.loop_timeout:g}s)"
            ]
        name, started, time_limit = task
        running = time.monotonic() - started
        if time_limit is None or running <= time_limit + self.loop_timeout:
            return []
        return [
            f"task {name} has run on the worker's event loop for {running:.1f}s, past its "
            f"{time_limit:g}s time limit"
        ]


class BeatHealth:
    """Health source of a beat process: the age of its last tick."""

    def __init__(self, tick_timeout: float):
        self.tick_timeout = tick_timeout
        self.max_interval: float | None = None  # the scheduler's, known at beat_init
        self.heartbeat = Heartbeat()
        self.ticks = 0

    def ticked(self) -> None:
        self.heartbeat.beat()
        self.ticks += 1

    @property
    def limit(self) -> float:
        return (self.max_interval or 0.0) + self.tick_timeout

    def liveness_reasons(self) -> list[str]:
        if not self.ticks:
            return []  # start-up is the startup probe's business
        age = self.heartbeat.age()
        if age > self.limit:
            return [
                f"beat is stuck: no tick for {age:.1f}s (limit {self.limit:g}s: max loop "
                f"interval {self.max_interval or 0:g}s + beat_tick_timeout {self.tick_timeout:g}s)"
            ]
        return []
