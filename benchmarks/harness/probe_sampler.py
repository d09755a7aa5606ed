"""A lightweight probe client: sequential GETs on fresh connections every 50 ms.

It runs as a thread of the harness (pinned to the client core) while wrk saturates the server,
like a kubelet that opens a new connection for every probe.
"""

import http.client
import threading
import time
from collections import Counter, defaultdict

from .procs import HOST
from .stats import latency_summary_ms

INTERVAL_S = 0.05
TIMEOUT_S = 5.0


class ProbeSampler(threading.Thread):
    """Cycle through ``paths`` on ``port``, one request every ``interval`` seconds."""

    def __init__(self, port: int, paths: list[str], interval: float = INTERVAL_S):
        super().__init__(daemon=True)
        self.port = port
        self.paths = paths
        self.interval = interval
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self._stop_event = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self._stop_event.is_set():
            path = self.paths[turn % len(self.paths)]
            turn += 1
            started = time.perf_counter()
            status = self.probe_once(path)
            elapsed = time.perf_counter() - started
            self.latencies[path].append(elapsed)
            self.statuses[path][status] += 1
            self._stop_event.wait(max(0.0, self.interval - elapsed))

    def probe_once(self, path: str) -> str:
        """Status code as text, or the error's class name; the latency counts either way."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT_S)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return str(response.status)
        except (OSError, http.client.HTTPException) as error:
            return type(error).__name__
        finally:
            connection.close()

    def stop(self) -> dict:
        """Stop sampling and summarise per path: p50/p99/max in ms and status counts."""
        self._stop_event.set()
        self.join(TIMEOUT_S + 1)
        return {
            path: {
                **latency_summary_ms(self.latencies[path]),
                "statuses": dict(self.statuses[path]),
            }
            for path in self.paths
        }
