"""The Tornado side of a request: HTTP/1.1 in and out, on the IOLoop only.

We plug into Tornado at the ``HTTPServerConnectionDelegate`` / ``HTTPMessageDelegate`` seam
rather than through ``tornado.web``: a ``RequestHandler`` per request, its routing and its
output buffering are work Django repeats anyway. Tornado still does what it is good at: parsing
request lines and headers, de-chunking bodies, keep-alive, timeouts for slow clients.

One ``Exchange`` is one request and its response. The loop fills it (headers, body), a worker
runs it through Django (``bridge.py``) and hands the response back through the ``send_*``
methods, which run on the loop again.

Every request passes the same gate in ``headers_received``: its target, Host and framing are
checked once (``validate.py``) and whatever Django could misread is answered 400 here. Chunked
bodies are read by ``chunked.py`` (extensions and trailers allowed). An exchange reads and
writes through its connection: ``protocol.AppProtocol`` for most, Tornado's
``connection.AppConnection`` on ``stream.AppStream`` for connections handed over to it; on
both, a client that half-closes after its request still gets the answer.
"""

import logging
import time

from tornado.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    ResponseStartLine,
)
from tornado.iostream import StreamClosedError, UnsatisfiableReadError

from ..events import UNMATCHED_ROUTE, RequestRecord
from .chunked import take_over_chunked_body
from .validate import BadRequest, validate

logger = logging.getLogger("hurricane_runtime")


class Exchange(HTTPMessageDelegate):
    """One request on the app port, from its headers to the last byte of its response."""

    __slots__ = (
        "server",
        "conn",
        "remote_addr",
        "start_line",
        "headers",
        "target",
        "body",
        "body_size",
        "created_at",
        "received_at",
        "submitted_at",
        "queue_wait",
        "received",
        "submitted",
        "completed",
        "closed",
        "close_after",
        "status",
        "response_bytes",
        "route",
        "request_id",
        "traceparent",
        "window",
    )

    def __init__(self, server, conn):
        self.server = server
        self.conn = conn
        self.created_at = time.monotonic()  # when the connection began waiting for headers
        context = getattr(conn, "context", None)
        self.remote_addr = getattr(context, "remote_ip", None) or ""
        self.target = None  # validate.Request, once the request passed the gate
        self.body = None
        self.body_size = 0
        self.queue_wait = 0.0
        self.received = False  # headers arrived; stays True after the response
        self.submitted = False
        self.completed = False
        self.closed = False
        self.close_after = False
        self.status = 0
        self.response_bytes = 0
        self.route = UNMATCHED_ROUTE
        self.request_id = ""
        self.traceparent = None
        self.window = None

    @property
    def path(self) -> str:
        target = self.target
        return target.path if target is not None else self.start_line.path.partition("?")[0]

    # -- reading the request (HTTPMessageDelegate) ---------------------------------------

    def headers_received(self, start_line, headers):
        self.received_at = time.perf_counter()
        self.start_line = start_line
        self.headers = headers
        self.received = True
        server = self.server
        server.state.in_flight += 1
        target = self.target  # already checked when a subclass dispatched on it (asgi.py)
        if target is None:
            try:
                target = self.target = validate(start_line, headers)
            except BadRequest as error:
                reason = "Bad Request" if error.status == 400 else "Not Implemented"
                self.reject(error.status, reason, f"{reason}: {error}\n".encode())
                return None
        length = target.content_length
        if length is not None and length > server.max_body_size:
            self.reject(413, "Payload Too Large", b"Request body too large\n")
            return None
        self.body = []
        if target.chunked:
            return self._read_chunked_body()
        return None

    async def _read_chunked_body(self) -> None:
        """Read the chunked body here, before Tornado would: see ``chunked.py``."""
        server = self.server
        try:
            await take_over_chunked_body(
                self.conn.stream,
                self.headers,
                self._take_chunk,
                server.max_header_size,
                server.body_timeout,
            )
        except BadRequest as error:
            self.reject(400, "Bad Request", f"Bad Request: {error}\n".encode())
        except TimeoutError:
            logger.info("timeout reading a chunked body from %s", self.remote_addr)
            self.abort()
        except (StreamClosedError, UnsatisfiableReadError):
            self.abort()

    def _take_chunk(self, data: bytes) -> bool:
        self.data_received(data)
        return not self.completed

    def data_received(self, chunk):
        if self.completed:
            return None
        self.body_size += len(chunk)
        if self.body_size > self.server.max_body_size:
            self.reject(413, "Payload Too Large", b"Request body too large\n")
            return None
        self.body.append(chunk)
        return None

    def finish(self):
        conn = self.conn
        conn.request_read()
        if self.completed:
            return
        # The request is complete: a FIN from the client no longer closes the connection
        # before the response is written (RFC 9112 section 9.6).
        conn.owe_response(True)
        if self.target.path == "*":
            self._answer_options()  # on the loop, not ``submitted`` (AppServerConnection)
            return
        self.submitted = True
        self.submitted_at = time.perf_counter()
        # Learn about a client that leaves (a reset) while its request waits or runs.
        conn.set_close_callback(self.on_connection_close)
        self.server.pool.submit(self.server.bridge.run, self)

    def _answer_options(self) -> None:
        """``OPTIONS *`` asks about the server, not a resource: the server answers it."""
        keep_alive = self.keep_alive()
        data = (
            b"HTTP/1.1 200 OK\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
            b"Content-Length: 0\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n"
        )
        self.send_encoded(200, data, 0, not keep_alive)

    def on_connection_close(self):
        self.closed = True
        if self.window is not None:
            self.window.release()  # wake a streaming worker so it notices
        if self.received and not self.submitted:
            self._complete()

    # -- writing the response (called on the loop by the worker's messages) -------------

    def reject(self, status: int, reason: str, body: bytes) -> None:
        """Answer before reading the body, and close: the rest of the body is not wanted."""
        headers = HTTPHeaders(
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
            }
        )
        self.status = status
        try:
            self.conn.write_headers(ResponseStartLine("HTTP/1.1", status, reason), headers, body)
            # The body is not read to its end, so Tornado closes after this response.
            self.conn.finish()
            self.response_bytes = len(body)
        except Exception:
            self.conn.close()
        self._complete()

    def _start_line(self, status: int, reason: str, headers: HTTPHeaders) -> ResponseStartLine:
        self.status = status
        if self.server.state.draining:
            # Tell keep-alive clients to go elsewhere: this pod is leaving.
            headers["Connection"] = "close"
            self.close_after = True
        return ResponseStartLine("HTTP/1.1", status, reason)

    def keep_alive(self) -> bool:
        """May the connection carry another request after this response? (any thread)

        False while draining, so keep-alive clients move to another pod; otherwise HTTP/1.1
        keeps alive unless the client asked to close, HTTP/1.0 only if it asked to keep.
        """
        if self.server.state.draining:
            return False
        connection = self.headers.get("Connection", "").lower()
        if self.start_line.version == "HTTP/1.1":
            return connection != "close"
        return connection == "keep-alive"

    def send_encoded(self, status: int, data: bytes, body_size: int, close: bool) -> None:
        """Write a whole pre-encoded response (status line, headers, body) and finish."""
        self.status = status
        if self.closed:
            self._complete()
            return
        try:
            self.conn.write_whole(data)
            self.response_bytes = body_size
            if close:
                self.close_after = True
                self._close_if_draining()
        except Exception:
            logger.exception("error writing the response to %s", self.path)
            self.conn.close()
        self._complete()

    def send_head(self, status: int, reason: str, headers: HTTPHeaders) -> None:
        if self.closed:
            return
        try:
            self.conn.write_headers(self._start_line(status, reason, headers), headers)
        except Exception:
            logger.exception("error writing the response headers to %s", self.path)
            self.closed = True
            self.conn.close()

    def send_chunk(self, chunk: bytes) -> None:
        window = self.window
        if self.closed:
            window.release()
            return
        self.response_bytes += len(chunk)
        try:
            future = self.conn.write(chunk)
        except Exception:
            self.closed = True
            self.conn.close()
            window.release()
            return
        future.add_done_callback(lambda _: window.release())

    def end_stream(self) -> None:
        if not self.closed:
            try:
                self.conn.finish()
                self._close_if_draining()
            except Exception:
                logger.exception("error finishing the response to %s", self.path)
                self.conn.close()
        self._complete()

    def abort(self) -> None:
        """The response cannot be completed: closing is the only honest signal left."""
        self.closed = True
        self.conn.close()
        self._complete()

    def abandon(self) -> None:
        """The client left before a worker picked the request up; the view never ran."""
        self.status = 499  # nginx's "client closed request", for logs and metrics
        self._complete()

    def _close_if_draining(self) -> None:
        """Close once the response reached the socket, when it told the client to leave."""
        if self.close_after:
            self.conn.close_when_written()

    def _complete(self) -> None:
        if self.completed:
            return
        self.completed = True
        self.conn.owe_response(False)
        server = self.server
        server.state.in_flight -= 1
        listeners = server.observers.request_finished
        if listeners:
            record = RequestRecord(
                method=self.start_line.method,
                route=self.route,
                path=self.path,
                status=self.status,
                duration=time.perf_counter() - self.received_at,
                queue_wait=self.queue_wait,
                request_id=self.request_id,
                remote_addr=self.remote_addr,
                response_bytes=self.response_bytes,
                traceparent=self.traceparent,
            )
            server.observers.notify(listeners, record)


class AppDelegate(HTTPServerConnectionDelegate):
    """Creates an ``Exchange`` per request and remembers connections for the drain."""

    def __init__(self, server):
        self.server = server
        self.connections: dict = {}  # server connection -> its current Exchange
        # The dispatch hook: ``asgi.AsgiExchange`` when async views or websockets are on; it
        # hands those to the event loop and everything else to ``Exchange`` unchanged.
        self.exchange_class = Exchange

    def start_request(self, server_conn, request_conn):
        """The next request's ``Exchange``; ``server_conn`` is the client connection
        (``connection.AppServerConnection`` or ``protocol.AppProtocol``), ``request_conn`` what
        the exchange reads and writes through (an ``AppConnection``, or the protocol itself)."""
        exchange = self.exchange_class(self.server, request_conn)
        self.connections[server_conn] = exchange
        return exchange

    def on_close(self, server_conn):
        self.connections.pop(server_conn, None)

    def close_stale_connections(self, idle_timeout: float) -> int:
        """Close connections that waited longer than ``idle_timeout`` for complete headers.

        One sweep per second instead of Tornado's per-request header timeout: that one costs a
        timer and a future on every request, this one a timestamp. It covers idle keep-alive
        connections and clients that trickle their headers (slowloris) alike.
        """
        deadline = time.monotonic() - idle_timeout
        closed = 0
        for server_conn, exchange in list(self.connections.items()):
            if not exchange.received and exchange.created_at < deadline:
                server_conn.close_connection()
                closed += 1
        return closed

    def close_idle_connections(self) -> int:
        """Close keep-alive connections that wait for their next request; return how many.

        Tornado starts the next exchange of a connection only after the previous response
        has reached the socket, so an exchange without headers means an idle connection.
        """
        closed = 0
        for server_conn, exchange in list(self.connections.items()):
            if not exchange.received:
                server_conn.close_connection()
                closed += 1
        return closed
