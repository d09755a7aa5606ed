"""The app port: an HTTP/1.1 server in front of Django running on worker threads.

Connections are accepted by asyncio and run as ``protocol.AppProtocol``; the few that need
more (chunked request bodies, 100-continue, websockets, async views) are handed over to
Tornado's HTTP/1.1 classes (``connection.py``), which serve them from then on.

``AppServer`` owns the pieces and their order: the Django handler and the worker pool are
built before listening; stopping closes the listener first, then idle keep-alive connections,
then waits for in-flight requests. Async views and websockets run on the loop through the
project's ASGI application (``asgi.py``); the drain closes websockets with 1012 in jittered
batches and gives async views the same drain timeout.
"""

import asyncio
import logging

from django.conf import settings
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets

from ..state import StartupError
from .asgi import AsgiExchange, AsgiGateway, has_async_views
from .bridge import DjangoBridge
from .channel_layer import ChannelLayerHealth, project_channel_layer
from .connection import AppServerConnection
from .eventloop import loop_factory, loop_name
from .http import AppDelegate
from .pool import LoopChannel, WorkerPool
from .protocol import AppProtocol
from .stream import AppStream
from .websocket import WebSocketCollector, WebSocketStats

logger = logging.getLogger("hurricane_runtime")

# Tornado enforces its own body limit with a bare 400; ours answers 413 first, so Tornado's
# limit only has to be out of the way.
_TORNADO_BODY_LIMIT = 1 << 62


def _no_nodelay_change(value: bool) -> None:
    pass


class _AppHTTPServer(HTTPServer):
    """Tornado's HTTPServer, on ``AppStream`` connections, telling us when they close (drain)."""

    def handle_stream(self, stream, address) -> None:
        self.serve(AppStream.replacing(stream), address)

    def serve(self, stream: AppStream, address) -> None:
        """Run ``stream``'s connection on Tornado's HTTP/1.1 classes (``connection.py``)."""
        # Nagle's algorithm off for the whole connection, once. Tornado turns it off at the end
        # of every response and back on before the next request: two system calls per request.
        # Our responses leave in one write (or in chunks we want sent at once).
        stream.set_nodelay(True)
        stream.set_nodelay = _no_nodelay_change
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = AppServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def on_close(self, server_conn) -> None:
        super().on_close(server_conn)
        self.request_callback.on_close(server_conn)


class AppServer:
    """Serves Django on ``config.bind:config.port``: the workload of ``manage.py serve``.

    The lifecycle drives it (``prepare``, ``start``, ``stop_accepting``, ``drain``, ``close``)
    and the probes ask it for the reasons only it knows (backlog, worker threads).
    """

    name = "app server"

    def __init__(self, config, state, observers):
        self.config = config
        self.state = state
        state.workers = config.workers
        state.backlog_limit = config.backlog
        self.observers = observers
        self.max_body_size = config.max_body_size
        self.max_header_size = config.max_header_size  # also the limit of a trailer section
        self.body_timeout = config.body_timeout  # also for chunked bodies, which we read
        self.channel: LoopChannel | None = None
        self.bridge: DjangoBridge | None = None
        self.pool: WorkerPool | None = None
        self.delegate = AppDelegate(self)
        self.loop_factory = loop_factory(config.loop)  # read by the lifecycle's asyncio.Runner
        self.http: _AppHTTPServer | None = None
        self.listeners: list[asyncio.AbstractServer] = []  # the protocol's listening sockets
        self._sweeper: PeriodicCallback | None = None
        self.asgi: AsgiGateway | None = None
        self.websocket_stats = WebSocketStats()
        self.channel_layer: ChannelLayerHealth | None = None

    def add_metrics(self, registry) -> None:
        """Websocket metrics on the process's registry."""
        if self.config.websockets:
            registry.register(WebSocketCollector(self.websocket_stats))

    def prepare(self, asyncio_loop) -> None:
        """Build the Django handler once and start the worker threads (before listening)."""
        self.channel = LoopChannel(asyncio_loop)
        self.bridge = DjangoBridge(self.config, self.channel.post)
        self.pool = WorkerPool(self.config.workers)
        self.state.pool = self.pool
        self._prepare_asgi()

    def _prepare_asgi(self) -> None:
        """Route websockets and async views to the loop, only when the project has them.

        A project without async views and websockets keeps the plain ``Exchange``: its sync
        requests pay nothing for ASGI.
        """
        config = self.config
        if config.websockets and not getattr(settings, "ASGI_APPLICATION", None):
            raise StartupError(
                "option 'websockets' needs the setting ASGI_APPLICATION (the project's ASGI "
                "application with websocket routes, e.g. a Channels ProtocolTypeRouter)"
            )
        if not config.websockets and not (config.async_views and has_async_views()):
            return
        self.asgi = AsgiGateway(config, self.state, self.observers, self.websocket_stats)
        self.delegate.exchange_class = AsgiExchange
        layer = project_channel_layer() if config.websockets else None
        if layer is not None:
            self.channel_layer = ChannelLayerHealth(
                layer, config.check_interval, config.check_timeout
            )

    async def start(self) -> None:
        """Listen on the app port; the startup probe turns 200 right after."""
        try:
            self.listen()
            await self._listen_with_protocol()
        except OSError as error:
            raise StartupError(f"cannot listen on port {self.config.port}: {error}") from error
        if self.channel_layer is not None:
            self.channel_layer.start()

    def describe(self) -> str:
        """The start-up log line."""
        config = self.config
        line = (
            f"serving on http://{config.bind}:{config.port} with {config.workers} worker "
            f"threads, backlog {config.backlog}, on {loop_name(self.loop_factory)}"
        )
        if self.asgi is not None:
            served = [
                name
                for name, on in (
                    ("async views", config.async_views),
                    ("websockets", config.websockets),
                )
                if on
            ]
            line += "; " + " and ".join(served) + " on the event loop"
        return line

    def listen(self) -> None:
        """Tornado's side of the app port: connections handed over by ``AppProtocol`` run on it."""
        config = self.config
        self.http = _AppHTTPServer(
            self.delegate,
            no_keep_alive=False,
            xheaders=False,
            decompress_request=False,
            max_header_size=config.max_header_size,
            max_body_size=_TORNADO_BODY_LIMIT,
            idle_connection_timeout=config.idle_timeout,
            body_timeout=config.body_timeout,
        )
        # The header timeout is enforced by our once-a-second sweep (see
        # AppDelegate.close_stale_connections), not by a timer per request.
        self.http.conn_params.header_timeout = None
        self._sweeper = PeriodicCallback(self._sweep, 1000)
        self._sweeper.start()

    async def _listen_with_protocol(self) -> None:
        """Listen with ``protocol.AppProtocol`` connections, on the sockets Tornado would bind."""
        config = self.config
        loop = asyncio.get_running_loop()
        for sock in bind_sockets(config.port, address=config.bind, backlog=1024):
            self.listeners.append(
                await loop.create_server(lambda: AppProtocol(self), sock=sock, backlog=1024)
            )

    def adopt(self, sock, address, pending: bytes) -> None:
        """Serve a protocol connection's socket on Tornado's connection from here on.

        ``pending`` holds the bytes received but not parsed yet (the request that needs
        Tornado, and whatever followed it).
        """
        http = self.http
        stream = AppStream.taking_over(sock, pending, http.max_buffer_size, http.read_chunk_size)
        http.serve(stream, address)

    def _sweep(self) -> None:
        closed = self.delegate.close_stale_connections(self.config.idle_timeout)
        if closed:
            logger.debug("closed %d connections idle for %gs", closed, self.config.idle_timeout)

    def stop_accepting(self) -> None:
        """Close the listening socket and idle keep-alive connections."""
        if self.http is not None:
            self.http.stop()
        for listener in self.listeners:
            listener.close()
        if self._sweeper is not None:
            self._sweeper.stop()
        closed = self.delegate.close_idle_connections()
        logger.info("stopped accepting connections (closed %d idle ones)", closed)

    async def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False when ``timeout`` ran out first.

        Websockets are closed with 1012 over the first half of ``timeout``; async views and
        websocket applications still running at its end are cancelled.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        asgi = self.asgi
        closing = loop.create_task(asgi.drain(deadline)) if asgi is not None else None
        while self.state.in_flight > 0 or self.delegate.connections or (asgi and asgi.busy):
            if loop.time() >= deadline:
                logger.warning(
                    "%d requests still running after the %gs drain timeout",
                    self.state.in_flight,
                    timeout,
                )
                if asgi is not None:
                    closing.cancel()
                    asgi.cancel_all()
                return False
            await asyncio.sleep(0.02)
            self.delegate.close_idle_connections()
        logger.info("all requests finished")
        return True

    # -- health source of the probes ---------------------------------------------------------

    def readiness_reasons(self) -> list[str]:
        """More requests waiting for a worker than the backlog allows: shed load elsewhere."""
        state = self.state
        reasons = []
        if state.backlog_saturated:
            reasons.append(
                f"backlog saturated: {state.waiting} requests waiting (limit {state.backlog_limit})"
            )
        if self.channel_layer is not None:
            reasons.extend(self.channel_layer.readiness_reasons())
        return reasons

    def liveness_reasons(self) -> list[str]:
        """A dead worker thread never comes back: only a restart restores the capacity."""
        pool = self.state.pool
        if pool is not None and not pool.alive():
            return ["a worker thread died"]
        return []

    def close(self) -> None:
        """Stop the worker threads; each closes its own database connections."""
        if self.channel_layer is not None:
            self.channel_layer.stop()
        if self.pool is not None:
            self.pool.shutdown(timeout=2.0)
