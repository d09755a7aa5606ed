"""The probe port on a thread of its own, for workloads that own the main thread.

``serve`` and ``consume`` run their work on the asyncio loop that also answers the probes. A
Celery worker or beat runs its own loop (kombu's hub, beat's tick loop) on the main thread, so
the same probe server (``probes.Probes`` + ``probes.ProbeServer``, metrics and webhooks wired
by ``observability.install``) runs on an asyncio/Tornado loop in a daemon thread instead. The
workload tells it what it knows through its health source and the lifecycle flags of
``RuntimeState``; the probes never wait for the workload's thread, so they answer even while
that thread is stuck, which is what lets liveness report it.

A forking workload (Celery's prefork pool) must not leak the port into its children: a child
that outlives its parent would keep the port bound and probes would hang instead of being
refused. The listening sockets are closed in every child forked after the port opened.
"""

import asyncio
import logging
import os
import threading

from tornado.ioloop import IOLoop

from . import checks, observability
from .events import Observers
from .probes import Probes, ProbeServer
from .state import RuntimeState

logger = logging.getLogger("hurricane_runtime")

# How often probe states are re-evaluated when nobody asks (state-change webhooks, metrics).
REFRESH_INTERVAL = 0.5


class ProbeThread:
    """Probes, metrics and webhooks of one process, served from a daemon thread.

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
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list = []
        checks.database_timeout = config.check_timeout

    @property
    def metrics(self):
        """The shared metrics (``None`` with ``no_metrics``); a workload adds its families."""
        return self.installed.metrics

    def start(self, timeout: float = 10.0) -> None:
        """Open the probe port on a new daemon thread; raise ``OSError`` if it cannot listen."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                if not self.config.no_probe:
                    self._sockets = self.probe_server.listen()
                self.probes.start(self.loop)
            except BaseException as error:  # handed to the starting thread
                failure.append(error)
                ready.set()
                return
            self.observers.notify(self.observers.server_started, IOLoop.current())
            self.loop.create_task(self._refresh())
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="hurricane-probes", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise OSError(f"probe port did not open within {timeout:g}s")
        if failure:
            raise failure[0]
        os.register_at_fork(after_in_child=self._close_in_child)

    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the probe thread (state changes are made there, in order)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the port and flush observers (webhooks); called once, on the way out."""
        if self.loop is None or self.loop.is_closed():
            return
        done = threading.Event()

        def shut():
            self.probes.evaluate_all()
            self.observers.notify(self.observers.server_stopping)
            self.probes.stop()
            self.probe_server.stop()
            self.loop.stop()
            done.set()

        self.loop.call_soon_threadsafe(shut)
        done.wait(timeout)

    async def _refresh(self) -> None:
        interval = min(self.config.check_interval, REFRESH_INTERVAL)
        while True:
            self.probes.refresh()
            self.probes.evaluate_all()
            await asyncio.sleep(interval)

    def _close_in_child(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []
