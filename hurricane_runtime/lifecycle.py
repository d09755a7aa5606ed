"""The life of a runtime process: start-up, serving a workload, and the graceful way out.

One skeleton for every workload (the app server of ``serve``, the consumer of ``consume``):
the workload says what it serves, this module decides when. Order of start-up, and why:

1. the probe port listens first, so Kubernetes sees an honest "starting" (503) instead of
   a refused connection while start-up commands or migrations take their time;
2. start-up commands run in order, then the migration check waits until the database is
   migrated; both on a helper thread, so the loop keeps answering probes;
3. the workload prepares (on a helper thread: Django's handler, worker threads) and starts
   on the loop (the app port listens, the consumer registers), and only then does the
   startup probe say 200.

On the first SIGTERM readiness turns 503 at once, but the workload keeps serving for
``shutdown_delay``: endpoints controllers and load balancers need that long to stop sending
traffic. Then the workload stops accepting work (the listener closes, idle keep-alive
connections are closed), work in flight gets ``drain_timeout`` to finish (responses carry
``Connection: close``), database connections are closed and the process exits 0. A second
SIGTERM or SIGINT exits at once.

A workload is an object with ``name``; ``prepare(asyncio_loop)`` (blocking, run on a start-up
thread); ``async start()`` (on the loop, returns once serving; raises ``StartupError``);
``stop_accepting()``; ``async drain(timeout) -> bool``; ``close()``; ``describe()`` (the
start-up log line); optionally ``add_metrics(registry)`` (called once, before start-up, with
the registry of the metrics endpoint); and any of the health-source methods of
``probes.Probes``. It is built
by a factory called with ``(config, state, observers)``, like ``AppServer``.
"""

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time

import django
import tornado
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from tornado.ioloop import IOLoop

from . import __version__, checks, observability
from .events import Observers, StateEvent
from .heartbeat import LoopWatch
from .probe_thread import ProbePortThread
from .probes import STARTUP, Probes, ProbeServer
from .server import AppServer
from .state import RuntimeState, StartupError

logger = logging.getLogger("hurricane_runtime")

EXIT_OK = 0
GIL_SWITCH_INTERVAL = 0.001
EXIT_FAILED = 1


def unapplied_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Migrations known to the code but not applied to the database ``alias``."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


async def in_thread(fn, *args):
    """Run blocking start-up work on a daemon thread so the loop keeps answering probes.

    Not the loop's default executor: its threads are joined at exit, and a start-up
    command stuck on a dead database must not keep a stopping process alive.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def work():
        try:
            result = fn(*args)
        except BaseException as error:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(_set_exception, future, error)
        else:
            loop.call_soon_threadsafe(_set_result, future, result)
        finally:
            connections.close_all()

    threading.Thread(target=work, name="hurricane-startup", daemon=True).start()
    return await future


def _set_result(future, result):
    if not future.done():
        future.set_result(result)


def _set_exception(future, error):
    if not future.done():
        future.set_exception(error)


class Runtime:
    """One process: owns the state, the observers, the probe port, the workload and signals."""

    def __init__(self, config, workload_factory):
        self.config = config
        self.state = RuntimeState()
        self.observers = Observers()
        self.workload = workload_factory(config, self.state, self.observers)
        self.probes = Probes(config, self.state, self.observers, sources=[self.workload])
        self.probe_server = ProbeServer(config, self.probes, self.observers)
        # A workload whose loop runs the project's code (consume: async handlers) has its
        # probe port answered on a thread of its own; that thread then cannot tell a stuck
        # loop by failing to answer, so the loop's heartbeat becomes a liveness reason.
        self.probe_port: ProbePortThread | None = None
        self.loop_watch: LoopWatch | None = None
        if getattr(self.workload, "probes_on_thread", False):
            self.probe_port = ProbePortThread(self.probe_server)
            what = f"the {self.workload.name}'s event loop"
            self.loop_watch = LoopWatch(config.loop_timeout, what)
            self.probes.add_source(self.loop_watch)
        self._stop: asyncio.Event | None = None
        self._stop_signal: int | None = None
        checks.database_timeout = config.check_timeout

    def run(self) -> int:
        """Serve until stopped; return the process exit code."""
        # The IOLoop competes with the workers for the GIL. CPython makes a waiting thread
        # wait up to the switch interval (5 ms) per request for the GIL, and a probe needs
        # several: with CPU-bound views on every worker that adds up to tens of ms. 1 ms keeps
        # probes fast at the cost of more frequent switches between CPU-bound threads.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        installed = observability.install(self.config, self.state, self.observers)
        add_metrics = getattr(self.workload, "add_metrics", None)
        if installed.metrics is not None and add_metrics is not None:
            add_metrics(installed.metrics.registry)  # the workload's families, same endpoint
        _ensure_log_handler(self.config.debug)
        # A workload may choose the event loop (serve: uvloop when installed).
        loop_factory = getattr(self.workload, "loop_factory", None)
        with asyncio.Runner(debug=self.config.debug, loop_factory=loop_factory) as runner:
            return runner.run(self._main())

    # -- start-up ----------------------------------------------------------------------------

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._install_signal_handlers(loop)
        self.probes.start(loop)
        if not self.config.no_probe:
            try:
                if self.probe_port is not None:
                    self.probe_port.start()
                else:
                    self.probe_server.listen()
            except OSError as error:
                logger.error("cannot listen on probe port %s: %s", self.config.probe_port, error)
                self.probes.stop()
                return EXIT_FAILED
        beat = self.loop_watch.heartbeat.beat if self.loop_watch is not None else None
        refresh = loop.create_task(self.probes.keep_fresh(beat))
        startup = loop.create_task(self._start())
        stop_wait = loop.create_task(self._stop.wait())
        await asyncio.wait({startup, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not startup.done():
            logger.info("stopped during start-up")
            startup.cancel()
            code = EXIT_OK
        elif startup.exception() is not None:
            error = startup.exception()
            self.state.startup_error = str(error)
            self.probes.evaluate(STARTUP)
            self.probes.evaluate("readiness")
            self.observers.notify(
                self.observers.state_changed,
                StateEvent(STARTUP, False, f"start-up failed: {error}", time.time()),
            )
            logger.error("start-up failed: %s", error)
            code = EXIT_FAILED
        else:
            await stop_wait
            code = await self._shutdown()
        stop_wait.cancel()
        refresh.cancel()
        self.probes.stop()
        if self.probe_port is not None:
            self.probe_port.stop()
        else:
            self.probe_server.stop()
        self.workload.close()
        return code

    async def _start(self) -> None:
        config = self.config
        state = self.state
        for argv in config.commands:
            state.startup_step = f"running start-up command: {' '.join(argv)}"
            logger.info("running start-up command: %s", " ".join(argv))
            try:
                await in_thread(call_command, *argv)
            except (Exception, SystemExit) as error:
                raise StartupError(f"command {' '.join(argv)!r} failed: {error!r}") from error
        if config.check_migrations:
            await self._wait_for_migrations()
        state.startup_step = f"starting the {self.workload.name}"
        await in_thread(self.workload.prepare, asyncio.get_running_loop())
        await self.workload.start()
        freeze_startup_objects()
        state.started = True
        state.startup_step = "started"
        self.probes.evaluate_all()
        self._log_summary()
        self.observers.notify(self.observers.server_started, IOLoop.current())

    async def _wait_for_migrations(self) -> None:
        config = self.config
        deadline = time.monotonic() + config.check_migrations_timeout
        self.state.startup_step = "waiting for database migrations"
        logger.info("waiting until the database is migrated")
        while True:
            try:
                missing = await in_thread(unapplied_migrations)
            except Exception as error:
                missing = None
                self.state.startup_step = f"waiting for the database: {error}".strip()
            else:
                if not missing:
                    logger.info("database is migrated")
                    return
                self.state.startup_step = (
                    f"waiting for {len(missing)} unapplied migrations ({', '.join(missing[:3])}"
                    + (", ..." if len(missing) > 3 else "")
                    + ")"
                )
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"database not migrated after {config.check_migrations_timeout:g}s: "
                    f"{self.state.startup_step}"
                )
            await asyncio.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def _log_summary(self) -> None:
        config = self.config
        probes = (
            "no probe port"
            if config.no_probe
            else f"probes on {config.bind}:{config.probe_port} ("
            f"{config.startup_probe}, {config.readiness_probe}, {config.liveness_probe})"
        )
        logger.info(
            "%s; %s; hurricane_runtime %s, Django %s, Tornado %s, Python %s",
            self.workload.describe(),
            probes,
            __version__,
            django.get_version(),
            tornado.version,
            sys.version.split()[0],
        )

    # -- shutdown ---------------------------------------------------------------------------

    def _install_signal_handlers(self, loop) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # under the autoreloader: the reloader process owns the signals
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        if self._stop_signal is not None:
            logger.warning("second signal (%s): exiting now", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(128 + signum)
        self._stop_signal = signum
        logger.info("received %s: shutting down gracefully", signal.Signals(signum).name)
        self.state.draining = True
        self.probes.evaluate("readiness")
        self._stop.set()

    async def _shutdown(self) -> int:
        config = self.config
        self.state.draining = True
        self.probes.evaluate("readiness")
        # Ctrl-C at a terminal: nobody routes traffic to us, skip the load balancer delay.
        delay = 0.0 if self._stop_signal == signal.SIGINT else config.shutdown_delay
        if delay:
            logger.info("still serving for %gs while load balancers notice", delay)
            await asyncio.sleep(delay)
        self.workload.stop_accepting()
        drained = await self.workload.drain(config.drain_timeout)
        self.observers.notify(self.observers.server_stopping)
        connections.close_all()
        return EXIT_OK if drained else EXIT_FAILED


def freeze_startup_objects() -> None:
    """Keep what start-up built out of every later full garbage collection.

    A Django process holds some 60,000 container objects once its apps, URLconf and client
    libraries are loaded, all alive until exit. CPython's full collection walks every one of
    them, about 30 ms on a small core, and runs now and then under any steady load: each
    time, the loop (and with it every probe, request and delivery) stands still that long.
    Collecting once and then freezing moves the start-up objects to the permanent generation
    (``gc.freeze``), so later collections walk only what was made since. What start-up left
    as garbage is collected first; anything frozen is never freed, which for objects that
    live as long as the process costs nothing.
    """
    gc.collect()
    gc.freeze()


def _ensure_log_handler(debug: bool) -> None:
    """The ``hurricane_runtime`` logger prints something even in an unconfigured project."""
    if debug:
        logger.setLevel(logging.DEBUG)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)


def run(config, workload_factory, autoreload: bool = False) -> int:
    """Run one workload until stopped; return the process exit code.

    With ``autoreload`` (development) the process restarts when Python files change.
    """
    if autoreload:
        from django.utils import autoreload as django_autoreload

        def inner():
            code = Runtime(config, workload_factory).run()
            # The reloader waits on this thread; leaving the process is the only way out.
            os._exit(code)

        django_autoreload.run_with_reloader(inner)
        return EXIT_OK
    return Runtime(config, workload_factory).run()


def serve(config) -> int:
    """Entry point of ``manage.py serve`` once the config is built."""
    return run(config, AppServer, autoreload=config.autoreload)
