"""The probe port on a thread of its own, for workloads whose loop is busy or not ours.

``serve`` answers probes on the asyncio loop that serves the app port: that loop only parses
requests and hands them to worker threads, so a probe waits for little. Two kinds of workload
need the probe port elsewhere:

- a Celery worker or beat runs its own loop (kombu's hub, beat's tick loop) on the main
  thread. ``ProbeThread`` runs everything of the probes there (``probes.Probes`` with its check
  runners, ``probes.ProbeServer``, metrics and webhooks wired by ``observability.install``) on an
  asyncio/Tornado loop in a daemon thread. The workload reports through its health source and
  the lifecycle flags of ``RuntimeState``.
- ``consume`` runs the project's async handlers on its loop. A probe must not wait for them,
  and must still answer, with a reason, when one of them blocks the loop. ``lifecycle.Runtime``
  keeps the probe decisions on the workload's loop and moves only the HTTP side, the
  ``ProbeServer``, to a ``ProbePortThread``: a probe then waits for its turns at the GIL (the
  1 ms switch interval), not for the handlers.

Either way the probes never wait for the workload's thread, so they answer even while it is
stuck; a ``heartbeat.LoopWatch`` (or Celery's health sources) turns that into liveness.

A forking workload (Celery's prefork pool) must not leak the port into its children: a child
that outlives its parent would keep the port bound and probes would hang instead of being
refused. ``ProbeThread`` closes the listening sockets in every child forked after the port opened.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from tornado.ioloop import IOLoop

from . import checks, observability
from .events import Observers
from .probes import Probes, ProbeServer
from .state import RuntimeState

logger = logging.getLogger("hurricane_runtime")


class ProbePortThread:
    """A ``ProbeServer`` listening and answering on an asyncio loop in a daemon thread."""

    def __init__(self, probe_server: ProbeServer, listen: bool = True):
        self.probe_server = probe_server
        self.listen = listen
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sockets: list = []
        self._thread: threading.Thread | None = None

    def start(
        self,
        setup: Callable[[asyncio.AbstractEventLoop], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Listen on a new daemon thread, then run ``setup(loop)`` there; raise what failed.

        Returns once the port listens (``OSError`` if it cannot) and ``setup`` returned.
        """
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                if self.listen:
                    self.sockets = self.probe_server.listen()
                if setup is not None:
                    setup(self.loop)
            except BaseException as error:  # handed to the starting thread
                failure.append(error)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="hurricane-probes", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise OSError(f"probe port did not open within {timeout:g}s")
        if failure:
            raise failure[0]

    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the probe thread, after what was asked of it before."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, teardown: Callable[[], None] | None = None, timeout: float = 5.0) -> None:
        """Run ``teardown()`` on the probe thread, close the port and end the thread's loop."""
        if self.loop is None or self.loop.is_closed():
            return
        done = threading.Event()

        def shut():
            try:
                if teardown is not None:
                    teardown()
                self.probe_server.stop()
            finally:
                self.loop.stop()
                done.set()

        try:
            self.loop.call_soon_threadsafe(shut)
        except RuntimeError:  # its loop already ended
            return
        done.wait(timeout)

    def close_sockets(self) -> None:
        """Close the listening sockets without the loop (in a forked child)."""
        for sock in self.sockets:
            sock.close()
        self.sockets = []


class ProbeThread:
    """Probes, metrics and webhooks of one process, all served from a daemon thread.

    Build it, ``start()`` it once the process knows it will run (the port opens and the
    startup probe answers 503 until ``state.started``), ``stop()`` it on the way out.
    """

    def __init__(self, config, sources=(), state: RuntimeState | None = None):
        self.config = config
        self.state = state or RuntimeState()
        self.observers = Observers()
        self.installed = observability.install(config, self.state, self.observers)
        self.probes = Probes(config, self.state, self.observers, sources=sources)
        self.probe_server = ProbeServer(config, self.probes, self.observers)
        self.port = ProbePortThread(self.probe_server, listen=not config.no_probe)
        checks.database_timeout = config.check_timeout

    @property
    def metrics(self):
        """The shared metrics (``None`` with ``no_metrics``); a workload adds its families."""
        return self.installed.metrics

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.port.loop

    def start(self, timeout: float = 10.0) -> None:
        """Open the probe port on a new daemon thread; raise ``OSError`` if it cannot listen."""

        def setup(loop):
            self.probes.start(loop)
            self.observers.notify(self.observers.server_started, IOLoop.current())
            loop.create_task(self.probes.keep_fresh())

        self.port.start(setup, timeout)
        os.register_at_fork(after_in_child=self.port.close_sockets)

    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the probe thread (state changes are made there, in order)."""
        self.port.call(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the port and flush observers (webhooks); called once, on the way out."""

        def teardown():
            self.probes.evaluate_all()
            self.observers.notify(self.observers.server_stopping)
            self.probes.stop()

        self.port.stop(teardown, timeout)
