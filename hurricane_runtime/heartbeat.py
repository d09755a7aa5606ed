"""Liveness of a loop whose probes are answered by another thread.

When the probe port runs on the same event loop as the work (``serve``), a stuck loop cannot
answer: the kubelet's probe timeout is the liveness verdict. When the probes have a thread of
their own (Celery's worker and beat, ``consume``), they answer even while the work's loop is
stuck, so that loop must say it still runs: it beats a ``Heartbeat``, and a ``LoopWatch`` turns
a heartbeat older than its limit into a liveness reason. Both sides touch one float (atomic
under the GIL), so the probe thread never waits for the loop it watches.
"""

import time


class Heartbeat:
    """The last time a loop showed it runs (monotonic seconds)."""

    def __init__(self):
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last


class LoopWatch:
    """Health source: liveness fails when ``heartbeat`` is older than ``timeout`` seconds."""

    def __init__(self, timeout: float, what: str = "event loop"):
        self.timeout = timeout
        self.what = what
        self.heartbeat = Heartbeat()

    def liveness_reasons(self) -> list[str]:
        age = self.heartbeat.age()
        if age <= self.timeout:
            return []
        return [f"{self.what} stuck: no heartbeat for {age:.1f}s (limit {self.timeout:g}s)"]
