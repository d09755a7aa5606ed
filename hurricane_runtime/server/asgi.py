"""Async views and websockets on the event loop, through the project's ASGI application.

Sync views stay on the worker pool (``bridge.py``): Django runs them best on a thread, and
their throughput must not pay for this module. What needs no thread goes through ASGI 3 on
the loop instead:

- ``async def`` views (and class-based views with async handlers): the path is resolved
  against the URLconf when the request headers arrive, and the answer is cached per path, so
  a sync request pays one dict lookup. Their request bodies are read whole (with the same
  ``max_body_size`` as the pool path) before the view runs; ``receive`` then reports the
  client's disconnect, which makes Django cancel the abandoned view; ``send`` waits until the
  socket took each chunk, so a streaming response goes as fast as the client reads.
- websocket upgrades, when the ``websockets`` option is on (``websocket.py``).

The application is ``settings.ASGI_APPLICATION`` (Channels' convention: a ``ProtocolTypeRouter``
with the project's HTTP and websocket routes), else Django's own ASGI handler.

``AsgiExchange`` is the app port's exchange when any of this is enabled: it hands the requests
above to this module and everything else to ``http.Exchange`` unchanged.
"""

import asyncio
import contextvars
import logging
import time
from http.client import responses
from urllib.parse import unquote, urlsplit

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string
from tornado.httputil import HTTPHeaders, HTTPMessageDelegate, ResponseStartLine
from tornado.iostream import StreamClosedError, UnsatisfiableReadError

from .. import context
from ..events import UNMATCHED_ROUTE, RequestRecord
from ..state import StartupError
from .bridge import _REQUEST_ID_OK, _TRACEPARENT_OK, REQUEST_ID_HEADER, new_request_id
from .chunked import take_over_chunked_body
from .http import Exchange
from .validate import BadRequest, validate
from .websocket import Pinger, WebSocketSession, WebSocketStats, close_spread

logger = logging.getLogger("hurricane_runtime")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
ROUTE_CACHE_SIZE = 10_000  # distinct paths whose sync/async answer is remembered
_NO_BODY_STATUS = frozenset({204, 304})
_SYNC = object()  # cache value: the pool path handles this path


def load_application():
    """The project's ASGI application: ``ASGI_APPLICATION`` if set, else Django's handler."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        from django.core.handlers.asgi import ASGIHandler

        return ASGIHandler()
    try:
        return import_string(dotted)
    except ImportError as error:
        raise StartupError(f"cannot import ASGI_APPLICATION {dotted!r}: {error}") from error


def has_async_views(patterns=None) -> bool:
    """Whether any view of the URLconf is async (checked once, before listening)."""
    if patterns is None:
        from django.urls import get_resolver

        patterns = get_resolver().url_patterns
    for pattern in patterns:
        nested = getattr(pattern, "url_patterns", None)
        if nested is not None:
            if has_async_views(nested):
                return True
        elif iscoroutinefunction(getattr(pattern, "callback", None)):
            return True
    return False


_HTTP_VERSIONS = {"HTTP/1.1": "1.1", "HTTP/1.0": "1.0"}
# A websocket's scope lives as long as the socket, so thousands of open sockets hold the same
# header names and mostly the same values (Host, Origin, Upgrade, Connection, the version,
# the extensions a browser offers, its User-Agent). Those fields are one shared object each
# instead of a copy per socket. Clients choose what they send: both caches are bounded.
_FIELDS: dict = {}  # (name, value) -> ASGI (name, value) bytes pair; name -> name bytes
_FIELDS_MAX = 4096
_SHARED_VALUES = frozenset(
    (
        "host",
        "origin",
        "upgrade",
        "connection",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "user-agent",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "pragma",
    )
)


def _field(field: tuple[str, str]) -> tuple[bytes, bytes]:
    """A header field in ASGI's form, remembered (within bounds) when it is shared."""
    name, value = field
    lower = name.lower()
    asgi_name = _FIELDS.get(name)
    if asgi_name is None:
        asgi_name = lower.encode("latin-1")
        if len(_FIELDS) < _FIELDS_MAX:
            _FIELDS[name] = asgi_name
    pair = (asgi_name, value.encode("latin-1"))
    if lower in _SHARED_VALUES and len(_FIELDS) < _FIELDS_MAX:
        _FIELDS[field] = pair
    return pair


def split_target(target: str) -> tuple[str, str]:
    """(path, query) of a request target, origin-form or absolute-form."""
    path, _, query = target.partition("?")
    if not path.startswith("/"):
        path = urlsplit(path).path or "/"
    return path, query


class AsgiGateway:
    """The ASGI application on the loop, and every request and websocket running in it."""

    def __init__(self, config, state, observers, stats: WebSocketStats):
        self.config = config
        self.state = state
        self.observers = observers
        self.stats = stats
        self.app = load_application()
        self.server = (config.bind, config.port)  # the same tuple in every scope
        self.websockets_on = config.websockets
        self.async_views = config.async_views
        self.tasks: set[asyncio.Future] = set()
        self.websockets: set[WebSocketSession] = set()
        self.pinger = Pinger(self.websockets, config.websocket_ping_interval)
        self._routes: dict[str, object] = {}  # path -> URL pattern of an async view, or _SYNC

    # -- which requests come here -------------------------------------------------------------

    def take(self, exchange, start_line, headers):
        """A delegate for this request if it is ours (websocket, async view), else None.

        Runs for every request on the app port, sync ones included: a dict lookup on the
        path in the common case.
        """
        if self._upgrade(start_line, headers):
            return self._websocket(exchange, start_line, headers)
        route = self._route(start_line)
        if route is not _SYNC:
            return AsgiHttpExchange(self, exchange, start_line, headers, route)
        return None

    def claims(self, start_line, headers) -> bool:
        """Whether ``take`` takes this request (``protocol.py`` then hands it to Tornado)."""
        return self._upgrade(start_line, headers) or self._route(start_line) is not _SYNC

    def _upgrade(self, start_line, headers) -> bool:
        return (
            self.websockets_on
            and start_line.method == "GET"
            and "Upgrade" in headers
            and headers["Upgrade"].lower() == "websocket"
        )

    def _route(self, start_line):
        """The URL pattern of the async view ``start_line`` asks for, else ``_SYNC``."""
        if not self.async_views:
            return _SYNC
        route = self._routes.get(start_line.path.partition("?")[0])
        if route is None:
            route = self.async_route(start_line.path)
        return route

    def async_route(self, target: str):
        """The URL pattern if ``target`` resolves to an async view, else ``_SYNC`` (cached)."""
        path = split_target(target)[0]
        try:
            match = resolve(unquote(path))
        except Resolver404:
            route = _SYNC
        except Exception:  # a broken URLconf: the pool path answers with Django's error
            logger.exception("cannot resolve %s", path)
            route = _SYNC
        else:
            route = (match.route or UNMATCHED_ROUTE) if iscoroutinefunction(match.func) else _SYNC
        if len(self._routes) < ROUTE_CACHE_SIZE:
            self._routes[path] = route
        return route

    def scope(self, kind: str, exchange, start_line, headers) -> dict:
        # The target as the request gate checked it (validate.py): origin-form path and query
        # also for an absolute-form target, whose authority is then the host (RFC 9112
        # section 3.2.2), as on the pool path.
        path, query, authority = exchange.target[:3]
        address = getattr(exchange.conn.context, "address", None)
        client = tuple(address[:2]) if isinstance(address, tuple) else None
        known = _FIELDS
        fields = [known.get(field) or _field(field) for field in headers.get_all()]
        if authority is not None:
            fields = [field for field in fields if field[0] != b"host"]
            fields.append((b"host", authority.encode("latin-1")))
        scope = {
            "type": kind,
            "asgi": ASGI_VERSION,
            "http_version": _HTTP_VERSIONS.get(start_line.version)
            or start_line.version.partition("/")[2]
            or "1.1",
            "scheme": "ws" if kind == "websocket" else "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": fields,
            "client": client,
            "server": self.server,
        }
        if kind == "http":
            scope["method"] = start_line.method
        return scope

    def _websocket(self, exchange, start_line, headers) -> WebSocketSession:
        scope = self.scope("websocket", exchange, start_line, headers)
        offered = headers.get("Sec-WebSocket-Protocol", "")
        scope["subprotocols"] = [p.strip() for p in offered.split(",") if p.strip()]
        path = split_target(start_line.path)[0]
        return WebSocketSession(self, exchange.conn, exchange.remote_addr, scope, path)

    # -- bookkeeping -----------------------------------------------------------------------------

    def track(self, task: asyncio.Future) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def opened(self, session: WebSocketSession) -> None:
        self.websockets.add(session)
        self.stats.open += 1
        self.pinger.start()

    def closed(self, session: WebSocketSession) -> None:
        if session in self.websockets:
            self.websockets.discard(session)
            self.stats.open -= 1
            self.stats.closed(session.close_code)

    @property
    def busy(self) -> bool:
        """Async requests, websockets or their applications are still running."""
        return bool(self.tasks or self.websockets)

    async def drain(self, deadline: float) -> None:
        """Close websockets with 1012 over the first half of the time left, jittered."""
        loop = asyncio.get_running_loop()
        window = max(0.0, (deadline - loop.time()) / 2)
        if self.websockets:
            logger.info("closing %d websockets over %.1fs", len(self.websockets), window)
        await close_spread(list(self.websockets), window)

    def cancel_all(self) -> int:
        """Cancel what outlived the drain timeout; return how many."""
        tasks = [task for task in self.tasks if not task.done()]
        for task in tasks:
            task.cancel()
        for session in list(self.websockets):
            if session.protocol is not None:
                session.protocol._abort()
        return len(tasks)


class AsgiHttpExchange(HTTPMessageDelegate):
    """One request to an async view: the ASGI ``http`` scope on one HTTP/1.1 exchange."""

    def __init__(self, gateway: AsgiGateway, exchange, start_line, headers, route: str):
        self.gateway = gateway
        self.exchange = exchange  # the pool path's exchange: its connection and peer
        self.conn = exchange.conn
        self.start_line = start_line
        self.headers = headers
        self.route = route
        self.path = split_target(start_line.path)[0]
        self.body: list[bytes] = []
        self.body_size = 0
        self.received_at = time.perf_counter()
        self.task: asyncio.Task | None = None
        self.request_id = ""
        self.traceparent = None
        self.status = 0
        self.response_bytes = 0
        self.started = False  # response headers written
        self.sends_body = True  # False for HEAD, 204 and 304 (decided with the headers)
        self.finished = False  # response complete
        self.closed = False  # the client left
        self.completed = False
        self.disconnected: asyncio.Future | None = None
        self._response_start: dict | None = None

    # -- the request (HTTPMessageDelegate) -----------------------------------------------------

    def headers_received(self, start_line, headers):
        self.gateway.state.in_flight += 1
        length = headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self._body_limit:
            self._reject_too_large()
            return None
        if self.exchange.target.chunked:
            return self._read_chunked_body()
        return None

    async def _read_chunked_body(self) -> None:
        """Read a chunked body with ``chunked.py`` (extensions, trailers), as the pool path does."""
        config = self.gateway.config
        try:
            await take_over_chunked_body(
                self.conn.stream,
                self.headers,
                self._take_chunk,
                config.max_header_size,
                config.body_timeout,
            )
        except BadRequest as error:
            self._reject(400, "Bad Request", f"Bad Request: {error}\n".encode())
        except (TimeoutError, StreamClosedError, UnsatisfiableReadError):
            self.closed = True
            self.conn.close()
            self._complete()

    def _take_chunk(self, data: bytes) -> bool:
        self.data_received(data)
        return not self.completed

    @property
    def _body_limit(self) -> int:
        return self.gateway.config.max_body_size

    def data_received(self, chunk):
        if self.completed:
            return None
        self.body_size += len(chunk)
        if self.body_size > self._body_limit:
            self._reject_too_large()
            return None
        self.body.append(chunk)
        return None

    def finish(self):
        # The request is read: an end-of-file now means the client left (stream.py).
        self.conn.stream.reading_request = False
        if self.completed:
            return
        loop = asyncio.get_running_loop()
        self.disconnected = loop.create_future()
        self.conn.set_close_callback(self.on_connection_close)
        self.task = loop.create_task(self._run(), context=contextvars.Context())
        self.gateway.track(self.task)

    def on_connection_close(self):
        self.closed = True
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)
        if self.task is None:
            self.status = 499
            self._complete()

    def _reject_too_large(self) -> None:
        self._reject(413, "Payload Too Large", b"Request body too large\n")

    def _reject(self, status: int, reason: str, body: bytes) -> None:
        """Answer before the body is read to its end, and close."""
        headers = HTTPHeaders(
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
            }
        )
        self.status = status
        try:
            self.conn.write_headers(ResponseStartLine("HTTP/1.1", status, reason), headers)
            self.conn.write(body)
            self.conn.finish()
            self.response_bytes = len(body)
        except Exception:
            self.conn.close()
        self._complete()

    # -- the application -----------------------------------------------------------------------

    async def _run(self) -> None:
        headers = self.headers
        request_id = headers.get(REQUEST_ID_HEADER)
        if request_id is None or not _REQUEST_ID_OK(request_id):
            request_id = new_request_id()
        self.request_id = request_id
        context.request_id.set(request_id)
        traceparent = (headers.get("traceparent") or "").strip()
        if traceparent and _TRACEPARENT_OK(traceparent):
            self.traceparent = traceparent
            context.traceparent.set(traceparent)
        scope = self.gateway.scope("http", self.exchange, self.start_line, headers)
        try:
            await self.gateway.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            logger.warning("async view %s cancelled at the end of the drain", self.path)
            self.closed = True
            self.conn.close()
            raise
        except Exception:
            logger.exception("error in the ASGI application for %s", self.path)
            if not self.started and not self.closed:
                self._response_start = {
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain")],
                }
                await self.send({"type": "http.response.body", "body": b"Internal Server Error\n"})
        finally:
            if not self.finished:
                if self.closed:
                    self.status = 499  # nginx's "client closed request"
                elif self.started:
                    self.conn.close()  # an unfinished response: closing is the only signal
                else:  # the application returned without answering
                    logger.error("the ASGI application sent no response for %s", self.path)
                    self._response_start = {"status": 500, "headers": []}
                    await self.send({"type": "http.response.body", "body": b""})
            self._complete()

    async def receive(self) -> dict:
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": b"".join(body), "more_body": False}
        await self.disconnected
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._response_start is not None:
                raise RuntimeError("http.response.start sent twice")
            self._response_start = message
            return
        if kind != "http.response.body":
            raise ValueError(f"unexpected ASGI message {kind!r} for an HTTP request")
        if self._response_start is None:
            raise RuntimeError("http.response.body before http.response.start")
        if self.finished:
            raise RuntimeError("http.response.body after the response finished")
        if self.closed:
            return  # the client left; receive() tells the application
        chunk = message.get("body") or b""
        more = message.get("more_body", False)
        try:
            if not self.started:
                future = self._write_head(chunk, more)
            elif chunk and self.sends_body:
                future = self.conn.write(chunk)
            else:
                future = None
            if chunk and self.sends_body:
                self.response_bytes += len(chunk)
            if not more:
                self.finished = True
                self.conn.finish()
            elif future is not None:
                await future  # backpressure: the next chunk waits until this one left
        except StreamClosedError:
            self.closed = True
        except Exception:
            logger.exception("error writing the response to %s", self.path)
            self.closed = True
            self.conn.close()

    def _write_head(self, first_chunk: bytes, more: bool):
        """Write the status line and headers, with the first chunk of the body if any."""
        start = self._response_start
        status = self.status = int(start["status"])
        self.sends_body = self.start_line.method != "HEAD" and status not in _NO_BODY_STATUS
        headers = HTTPHeaders()
        for name, value in start.get("headers") or ():
            headers.add(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        if REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = self.request_id
        if not more and "Content-Length" not in headers and status not in _NO_BODY_STATUS:
            headers["Content-Length"] = str(len(first_chunk))
        if self.gateway.state.draining:
            headers["Connection"] = "close"  # keep-alive clients go to another pod
        self.started = True
        start_line = ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown"))
        body = first_chunk if first_chunk and self.sends_body else None
        return self.conn.write_headers(start_line, headers, body)

    def _complete(self) -> None:
        if self.completed:
            return
        self.completed = True
        gateway = self.gateway
        gateway.state.in_flight -= 1
        listeners = gateway.observers.request_finished
        if listeners:
            record = RequestRecord(
                method=self.start_line.method,
                route=self.route,
                path=self.path,
                status=self.status,
                duration=time.perf_counter() - self.received_at,
                queue_wait=0.0,
                request_id=self.request_id,
                remote_addr=self.exchange.remote_addr,
                response_bytes=self.response_bytes,
                traceparent=self.traceparent,
            )
            gateway.observers.notify(listeners, record)


class AsgiExchange(Exchange):
    """The app port's exchange with ASGI on: hands ours to the gateway, the rest to the pool."""

    __slots__ = ("handoff",)

    def __init__(self, server, conn):
        super().__init__(server, conn)
        self.handoff = None

    def headers_received(self, start_line, headers):
        try:
            # The same gate as every request (validate.py), before anything reads the target.
            self.target = validate(start_line, headers)
        except BadRequest:
            return super().headers_received(start_line, headers)  # which answers 400 / 501
        handoff = self.server.asgi.take(self, start_line, headers)
        if handoff is None:
            return super().headers_received(start_line, headers)
        self.handoff = handoff
        self.received = True  # not an idle connection: the sweeps leave it alone
        self.start_line = start_line
        self.headers = headers
        return handoff.headers_received(start_line, headers)

    def data_received(self, chunk):
        if self.handoff is None:
            return super().data_received(chunk)
        return self.handoff.data_received(chunk)

    def finish(self):
        if self.handoff is None:
            return super().finish()
        return self.handoff.finish()

    def on_connection_close(self):
        if self.handoff is None:
            return super().on_connection_close()
        return self.handoff.on_connection_close()
