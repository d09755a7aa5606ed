"""Startup, readiness and liveness: small functions of the runtime state and the last checks.

The probe port is a second Tornado server, on the same IOLoop as the app port (``serve``) or
on a thread of its own (``probe_thread``: Celery, ``consume``). A probe never waits for
anything: the state is in memory and the checks ran earlier on their own threads
(``checks.CheckRunner``), so a probe answers in well under a millisecond of loop time even
while every worker thread is stuck in a slow view.

Every answer is JSON::

    {"status": "ok" | "unavailable", "probe": "readiness", "reasons": ["draining"]}

with 200 for ok and 503 for unavailable. Each evaluation updates ``state.probe_healthy``;
a change publishes a ``StateEvent`` to ``observers.state_changed``.
"""

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from http.client import responses

from tornado.httpserver import HTTPServer
from tornado.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    ResponseStartLine,
)
from tornado.netutil import bind_sockets

from .checks import LIVENESS, READINESS, CheckRunner
from .events import UNMATCHED_ROUTE, RequestRecord, StateEvent

logger = logging.getLogger("hurricane_runtime")

STARTUP, READINESS_PROBE, LIVENESS_PROBE = "startup", "readiness", "liveness"
# How often probe states are re-evaluated when nobody asks (state-change webhooks, metrics).
REFRESH_INTERVAL = 0.5


class Probes:
    """Decides the three probes and publishes their changes.

    What every workload shares is decided here: start-up progress and failure, draining, and
    the Django checks tagged ``readiness`` / ``liveness``. What only one workload knows (serve's
    backlog and worker threads, a consumer's channels) comes from its *health sources*: objects
    with any of ``startup_reasons()``, ``readiness_reasons()`` and ``liveness_reasons()``, each
    returning the reasons the probe fails (an empty list: healthy). They run on the loop for
    every probe, so they read state in memory and never wait for anything.
    """

    def __init__(self, config, state, observers, sources=()):
        self.config = config
        self.state = state
        self.observers = observers
        self.sources = list(sources)
        self.readiness_checks = CheckRunner(
            READINESS, config.check_timeout, config.check_interval, self._checks_done
        )
        self.liveness_checks = CheckRunner(
            LIVENESS,
            config.check_timeout,
            config.check_interval,
            self._checks_done,
            healthy_before_first_run=True,
        )
        self._loop = None
        self._loop_thread: int | None = None

    def start(self, asyncio_loop) -> None:
        """Start the check runners on ``asyncio_loop``, the loop (and thread) that owns us.

        Called on that loop's thread. Decisions are recorded and published there only;
        ``answer`` may be called from another thread (see there).
        """
        self._loop = asyncio_loop
        self._loop_thread = threading.get_ident()
        self.readiness_checks.start(asyncio_loop)
        self.liveness_checks.start(asyncio_loop)
        self.refresh()

    def stop(self) -> None:
        self.readiness_checks.stop()
        self.liveness_checks.stop()

    def refresh(self) -> None:
        """Start check runs that are due (on the loop; called periodically and per probe)."""
        self.readiness_checks.refresh()
        self.liveness_checks.refresh()

    def _checks_done(self) -> None:
        self.evaluate(READINESS_PROBE)
        self.evaluate(LIVENESS_PROBE)

    # -- the three decisions ---------------------------------------------------------------

    def add_source(self, source) -> None:
        """Let ``source`` add reasons to the probes (see the class docstring)."""
        self.sources.append(source)

    def _source_reasons(self, method: str) -> list[str]:
        reasons = []
        for source in self.sources:
            decide = getattr(source, method, None)
            if decide is not None:
                reasons.extend(decide())
        return reasons

    def startup_reasons(self) -> list[str]:
        state = self.state
        if state.startup_error:
            return [f"start-up failed: {state.startup_error}"]
        if not state.started:
            return [state.startup_step]
        return self._source_reasons("startup_reasons")

    def readiness_reasons(self) -> list[str]:
        state = self.state
        reasons = []
        if state.startup_error:
            reasons.append("start-up failed")
        elif not state.started:
            reasons.append("starting")
        if state.draining:
            reasons.append("draining")
        reasons.extend(self._source_reasons("readiness_reasons"))
        reasons.extend(self.readiness_checks.reasons())
        return reasons

    def liveness_reasons(self) -> list[str]:
        # A stalled event loop cannot answer at all: the probe's own timeout reports it.
        reasons = self._source_reasons("liveness_reasons")
        reasons.extend(self.liveness_checks.reasons())
        return reasons

    def reasons(self, probe: str) -> list[str]:
        """Why ``probe`` fails now (empty: healthy); reads state only, from any thread."""
        if probe == STARTUP:
            return self.startup_reasons()
        if probe == READINESS_PROBE:
            return self.readiness_reasons()
        return self.liveness_reasons()

    def answer(self, probe: str) -> tuple[bool, list[str]]:
        """Decide ``probe`` for a request on the probe port, on whichever thread serves it.

        On the owning loop's thread: refresh due checks, then ``evaluate``. On another thread
        (a ``probe_thread.ProbePortThread`` beside a busy loop) the answer is computed from the
        same state, and a change is handed to the owning loop to record and publish, so that
        state events, webhooks and logs keep coming from one thread, in order. The owning
        loop's periodic refresh starts due checks.
        """
        if self._loop is None or threading.get_ident() == self._loop_thread:
            self.refresh()
            return self.evaluate(probe)
        reasons = self.reasons(probe)
        healthy = not reasons
        if self.state.probe_healthy.get(probe) != healthy:
            # A closed owning loop means the process is on its way out.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.evaluate, probe)
        return healthy, reasons

    def evaluate(self, probe: str) -> tuple[bool, list[str]]:
        """Decide ``probe`` now; record it and publish a change (on the owning loop)."""
        reasons = self.reasons(probe)
        healthy = not reasons
        previous = self.state.probe_healthy.get(probe)
        self.state.probe_healthy[probe] = healthy
        if previous != healthy:
            event = StateEvent(
                probe=probe,
                healthy=healthy,
                reason="; ".join(reasons) if reasons else "ok",
                timestamp=time.time(),
            )
            log = logger.info if healthy or probe != LIVENESS_PROBE else logger.warning
            log("%s probe is now %s (%s)", probe, "ok" if healthy else "unavailable", event.reason)
            self.observers.notify(self.observers.state_changed, event)
        return healthy, reasons

    def evaluate_all(self) -> None:
        for probe in (STARTUP, READINESS_PROBE, LIVENESS_PROBE):
            self.evaluate(probe)

    async def keep_fresh(self, on_each_pass=None) -> None:
        """Start due checks and re-decide every probe even when nobody asks, until cancelled.

        Runs on the owning loop, so that state events and metrics follow the state without a
        kubelet asking. ``on_each_pass()`` runs first on every pass (a loop's heartbeat).
        """
        interval = min(self.config.check_interval, REFRESH_INTERVAL)
        while True:
            if on_each_pass is not None:
                on_each_pass()
            self.refresh()
            self.evaluate_all()
            await asyncio.sleep(interval)


def probe_body(probe: str, healthy: bool, reasons: list[str]) -> bytes:
    status = "ok" if healthy else "unavailable"
    return json.dumps({"status": status, "probe": probe, "reasons": reasons}).encode()


class _ProbeExchange(HTTPMessageDelegate):
    """One request on the probe port: answered on the loop, right after its headers."""

    def __init__(self, server, conn):
        self.server = server
        self.conn = conn
        self.remote_addr = getattr(getattr(conn, "context", None), "remote_ip", None) or ""

    def headers_received(self, start_line, headers):
        self.started = time.perf_counter()
        self.start_line = start_line

    def data_received(self, chunk):
        pass  # probes take no body

    def finish(self):
        start_line = self.start_line
        path = start_line.path.partition("?")[0]
        status, content_type, body, route = self.server.answer(start_line.method, path)
        headers = HTTPHeaders(
            {
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                "Cache-Control": "no-store",
            }
        )
        reason = responses.get(status, "Unknown")
        send = body if start_line.method != "HEAD" else None
        self.conn.write_headers(ResponseStartLine("HTTP/1.1", status, reason), headers, send)
        self.conn.finish()
        observers = self.server.observers
        if observers.probe_finished:
            record = RequestRecord(
                method=start_line.method,
                route=route,
                path=path,
                status=status,
                duration=time.perf_counter() - self.started,
                queue_wait=0.0,
                request_id="",
                remote_addr=self.remote_addr,
                response_bytes=len(body),
            )
            observers.notify(observers.probe_finished, record)

    def on_connection_close(self):
        pass


class ProbeServer(HTTPServerConnectionDelegate):
    """The probe port: the three probes plus ``observers.probe_routes`` (metrics)."""

    def __init__(self, config, probes: Probes, observers):
        self.config = config
        self.probes = probes
        self.observers = observers
        self.paths = {
            config.startup_probe: STARTUP,
            config.readiness_probe: READINESS_PROBE,
            config.liveness_probe: LIVENESS_PROBE,
        }
        self.http: HTTPServer | None = None

    def start_request(self, server_conn, request_conn):
        return _ProbeExchange(self, request_conn)

    def answer(self, method: str, path: str) -> tuple[int, str, bytes, str]:
        """(status, content type, body, route) for one probe-port request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"Method Not Allowed\n", UNMATCHED_ROUTE
        probe = self.paths.get(path)
        if probe is not None:
            healthy, reasons = self.probes.answer(probe)
            body = probe_body(probe, healthy, reasons)
            return (200 if healthy else 503), "application/json", body, path
        route = self.observers.probe_routes.get(path)
        if route is not None:
            try:
                status, content_type, body = route()
            except Exception:
                logger.exception("probe port route %s failed", path)
                return 500, "text/plain", b"Internal Server Error\n", path
            return status, content_type, body, path
        return 404, "text/plain", b"Not Found\n", UNMATCHED_ROUTE

    def listen(self) -> list[socket.socket]:
        """Listen on the probe port; return the listening sockets (for a forking workload)."""
        self.http = HTTPServer(
            self,
            max_header_size=16 * 1024,
            max_body_size=16 * 1024,
            idle_connection_timeout=30,
            body_timeout=5,
        )
        sockets = bind_sockets(self.config.probe_port, address=self.config.bind)
        self.http.add_sockets(sockets)
        return sockets

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
