"""Load for the SIGTERM test: keep-alive client threads that classify every request's fate.

wrk can only count errors; here each request is put in one class:

- ``ok``: a complete 2xx response;
- ``non_2xx``: a complete response with another status;
- ``broken_response``: the server sent part of a response, then closed or reset;
- ``reset_fresh_connection``: a connection the kernel had accepted was closed before any
  response byte (the server dropped a request it had accepted or left in its accept queue);
- ``closed_idle_keepalive``: a reused keep-alive connection closed before any response byte
  (the server closed it between requests, a client retries these safely);
- ``timeout``: no answer within the client timeout;
- ``refused``: connect refused: the listener was already closed (allowed).

The first four and ``timeout`` count as failed accepted requests.
"""

import http.client
import threading
import time
from collections import Counter

from .procs import HOST

TIMEOUT_S = 10.0
FAILED_ACCEPTED = ("non_2xx", "broken_response", "reset_fresh_connection", "timeout")


class ShutdownClient(threading.Thread):
    """One keep-alive client sending GET ``path`` in a loop until stopped."""

    def __init__(self, port: int, path: str):
        super().__init__(daemon=True)
        self.port = port
        self.path = path
        self.outcomes: Counter = Counter()
        self.connection_close_seen = 0  # responses telling the client to leave
        self._stop_event = threading.Event()

    def run(self) -> None:
        connection = None
        requests_on_connection = 0
        while not self._stop_event.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT_S)
                try:
                    connection.connect()
                except ConnectionRefusedError:
                    self.outcomes["refused"] += 1
                    connection = None
                    self._stop_event.wait(0.01)
                    continue
                except OSError:
                    self.outcomes["connect_error"] += 1
                    connection = None
                    self._stop_event.wait(0.01)
                    continue
                requests_on_connection = 0
            outcome, keep = self.request_once(connection, reused=requests_on_connection > 0)
            self.outcomes[outcome] += 1
            requests_on_connection += 1
            if not keep:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def request_once(self, connection, reused: bool) -> tuple[str, bool]:
        """Send one request; return its class and whether the connection may be reused."""
        try:
            connection.request("GET", self.path)
            response = connection.getresponse()
        except TimeoutError:
            return "timeout", False
        except (OSError, http.client.HTTPException):
            return ("closed_idle_keepalive" if reused else "reset_fresh_connection"), False
        try:
            response.read()
        except TimeoutError:
            return "timeout", False
        except (OSError, http.client.HTTPException):
            return "broken_response", False
        if response.will_close:
            self.connection_close_seen += 1
        outcome = "ok" if 200 <= response.status < 300 else "non_2xx"
        return outcome, not response.will_close

    def stop(self) -> None:
        self._stop_event.set()
        self.join(TIMEOUT_S + 1)


def run_sigterm_test(server, paths: list[str], before_s: float, exit_timeout: float) -> dict:
    """Load ``server`` with one client per path, SIGTERM it mid-run, classify every request."""
    clients = [ShutdownClient(server.spec.port, path) for path in paths]
    for client in clients:
        client.start()
    time.sleep(before_s)
    term_at = time.perf_counter()
    server.terminate()
    exit_code = server.wait_exit(exit_timeout)
    exit_s = time.perf_counter() - term_at
    time.sleep(0.5)  # keep knocking after the exit: these must be refused, nothing else
    for client in clients:
        client.stop()
    totals = sum((client.outcomes for client in clients), Counter())
    return {
        "clients": len(clients),
        "paths": sorted(set(paths)),
        "sigterm_after_s": before_s,
        "exit_code": exit_code,
        "seconds_to_exit": round(exit_s, 2) if exit_code is not None else None,
        "outcomes": dict(totals),
        "failed_accepted": sum(totals[name] for name in FAILED_ACCEPTED),
        "connection_close_responses": sum(client.connection_close_seen for client in clients),
    }
