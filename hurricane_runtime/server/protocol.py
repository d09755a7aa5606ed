"""The app port's client connection as one ``asyncio.Protocol``: no futures per request.

Tornado's connection (``connection.py``) costs, per request, a new ``HTTP1Connection`` with its
futures, two coroutine resumptions, an ``IOStream`` read with its own future and buffer
bookkeeping, and a close callback set and cleared. Here the event loop hands the received bytes
to ``data_received`` (under uvloop straight from C), the request head is cut from them and
parsed at once, and the response goes out with one ``transport.write``: the only per-request
objects are the ``http.Exchange`` and the parsed head.

The request goes through the same gate as on Tornado's connection: the head is parsed by
``fields.py`` and Tornado's request-line parser, checked by ``validate.py`` (here, before
deciding who serves it; ``Exchange.headers_received`` answers what fails), a malformed head
is answered with a bare 400 and the connection closed, Content-Length bodies are read within
the body timeout, requests are answered one after the other in the order they came
(pipelining), and a client that half-closes after a complete request still gets its answer
(RFC 9112 section 9.6).

What is rare, or not for the worker pool, stays Tornado's: a request with
``Transfer-Encoding`` (chunked bodies, ``chunked.py``) or ``Expect`` (100-continue), a
websocket upgrade or a request for an async view (``asgi.AsgiGateway.claims``) hands the
connection, with the bytes already received, to Tornado's connection for good
(``AppServer.adopt``), where ``asgi.py`` and ``websocket.py`` take it as before.
"""

import asyncio
import contextlib
import logging
import os
import socket

from tornado.httputil import HTTPInputError, HTTPOutputError, parse_request_start_line
from tornado.iostream import StreamClosedError

from .connection import HEAD_END
from .fields import parse_header_section
from .validate import BadRequest, validate

gen_log = logging.getLogger("tornado.general")  # where Tornado's connection logs the same
app_log = logging.getLogger("tornado.application")

# Unparsed bytes held while a request is answered: past this, reading pauses (a pipelining
# client is throttled, as Tornado's stream throttles it past one read chunk).
READ_AHEAD = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class Peer:
    """The client's address, where ``http.Exchange`` looks for it (Tornado's request context)."""

    __slots__ = ("remote_ip", "address")

    def __init__(self, address):
        self.address = address
        self.remote_ip = address[0] if isinstance(address, tuple) else ""


def can_keep_alive(start_line, headers) -> bool:
    """Tornado's rule: HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only if asked for."""
    connection = headers.get("Connection")
    if connection is not None:
        connection = connection.lower()
    if start_line.version == "HTTP/1.1":
        return connection != "close"
    if "Content-Length" in headers or start_line.method in ("HEAD", "GET"):
        return connection == "keep-alive"
    return False


class AppProtocol(asyncio.Protocol):
    """One client connection: reads requests, hands each to an ``Exchange``, writes its answer.

    Also the connection an ``Exchange`` writes through (``write_whole``, ``write_headers``,
    ``write``, ``finish``, ``close``), the same methods ``connection.AppConnection`` has.
    """

    __slots__ = (
        "app",
        "delegate",
        "loop",
        "transport",
        "context",
        "buffer",
        "exchange",
        "busy",
        "body_left",
        "body_timer",
        "request_complete",
        "keep_alive",
        "peer_finished",
        "closed",
        "handed_over",
        "close_callback",
        "start_line",
        "headers",
        "chunking",
        "content_remaining",
        "write_paused",
        "write_waiters",
        "handover_pending",
    )

    def __init__(self, app):
        self.app = app  # the AppServer: limits, the delegate, the hand-over to Tornado
        self.delegate = app.delegate
        self.loop = None
        self.transport = None
        self.context = None
        self.buffer = b""  # received, not yet parsed
        self.exchange = None  # the current (or next) request's Exchange
        self.busy = False  # a request is being read or answered: later ones wait
        self.body_left = 0  # bytes of the current request's body still to come
        self.body_timer = None
        self.request_complete = False  # the current request was read whole
        self.keep_alive = True
        self.peer_finished = False  # the client sent its FIN
        self.closed = False
        self.handed_over = False
        self.close_callback = None
        self.start_line = None
        self.headers = None
        self.chunking = False  # the response body goes out in chunks
        self.content_remaining = None  # of a streamed response's Content-Length
        self.write_paused = False
        self.write_waiters = None  # futures of streamed writes waiting for the socket
        self.handover_pending = None

    # -- the connection (asyncio.Protocol) -----------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses leave in one write, or in chunks wanted at once: no Nagle delay. A
            # client that already reset the connection is noticed by the transport instead.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.context = Peer(transport.get_extra_info("peername"))
        self._next_exchange()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.body_left:
            self._read_body()
        elif not self.busy:
            self._process()
        elif len(self.buffer) > READ_AHEAD and not self.closed:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.peer_finished = True
        if self.body_left:
            return False  # the client sent less than the request it began: close
        if not self.busy:
            self._process()  # answers what is buffered, then closes
        return True  # half-closed: the answers owed still go out (RFC 9112 section 9.6)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.delegate.on_close(self)
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
        waiters, self.write_waiters = self.write_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_exception(StreamClosedError())
                waiter.exception()  # retrieved: a closed stream is not an error to log
        if self.handed_over:
            return
        callback, self.close_callback = self.close_callback, None
        exchange = self.exchange
        try:
            if callback is not None:
                callback()
            elif exchange is not None and exchange.received and not exchange.completed:
                exchange.on_connection_close()  # its request ended before it was read whole
        except Exception:
            app_log.error("Uncaught exception", exc_info=True)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self.write_waiters = self.write_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        pending = self.handover_pending
        if pending is not None and not self.closed:
            self.handover_pending = None
            self._hand_over(pending)

    # -- reading requests ------------------------------------------------------------------

    def _next_exchange(self) -> None:
        self.exchange = self.delegate.start_request(self, self)

    def _process(self) -> None:
        """Start the next buffered request, or close when the client is done sending."""
        if self.busy or self.closed or self.transport.is_closing():
            return
        buffer = self.buffer
        match = HEAD_END.search(buffer)
        limit = self.app.max_header_size
        if match is None:
            if len(buffer) > limit or self.peer_finished:
                self.transport.close()  # a head too large, or none to come
            else:
                self._resume_reading()
            return
        end = match.end()
        if end > limit:
            self.transport.close()
            return
        self.buffer = buffer[end:]
        self._start(buffer[:end])

    def _start(self, head: bytes) -> None:
        try:
            first_line, headers = parse_header_section(head.decode("latin-1"))
            start_line = parse_request_start_line(first_line)
        except HTTPInputError as error:
            gen_log.info("Malformed HTTP message from %s: %s", self.context.remote_ip, error)
            self.closed_after(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            return
        try:
            target = validate(start_line, headers)
        except BadRequest:
            target = None  # the exchange checks again, and answers 400 or 501
        else:
            asgi = self.app.asgi
            if (
                target.chunked
                or "Expect" in headers
                or (asgi is not None and asgi.claims(start_line, headers))
            ):
                self._hand_over(head + self.buffer)
                return
        self.busy = True
        self.request_complete = False
        self.start_line = start_line
        self.headers = headers
        self.keep_alive = can_keep_alive(start_line, headers)
        exchange = self.exchange
        exchange.target = target
        try:
            exchange.headers_received(start_line, headers)
            if exchange.completed:
                return  # refused: the answer says Connection: close
            length = exchange.target.content_length
            if length:
                self.body_left = length
                self._resume_reading()
                timeout = self.app.body_timeout
                if timeout:
                    self.body_timer = self.loop.call_later(timeout, self._body_timed_out)
                self._read_body()
            else:
                self._request_read()
        except Exception:
            app_log.error("Uncaught exception", exc_info=True)
            self.close()

    def _read_body(self) -> None:
        buffer = self.buffer
        if buffer:
            left = self.body_left
            if len(buffer) > left:
                chunk, self.buffer = buffer[:left], buffer[left:]
            else:
                chunk, self.buffer = buffer, b""
            self.body_left = left - len(chunk)
            self.exchange.data_received(chunk)
            if self.exchange.completed:  # refused (too large): the rest is not wanted
                self.body_left = 0
        if not self.body_left:
            if self.body_timer is not None:
                self.body_timer.cancel()
                self.body_timer = None
            if not self.exchange.completed:
                self._request_read()

    def _resume_reading(self) -> None:
        transport = self.transport
        if not transport.is_reading() and not transport.is_closing():
            transport.resume_reading()

    def _body_timed_out(self) -> None:
        self.body_timer = None
        if self.body_left and not self.closed:
            gen_log.info("Timeout reading body from %s", self.context.remote_ip)
            self.transport.abort()

    def _request_read(self) -> None:
        self.request_complete = True
        try:
            self.exchange.finish()
        except Exception:
            app_log.error("Uncaught exception", exc_info=True)
            self.close()

    def _response_done(self) -> None:
        """The current response is written (or left with the transport): on to the next."""
        self.close_callback = None
        self.chunking = False
        self.content_remaining = None
        self.busy = False
        if self.closed:
            return
        if not (self.keep_alive and self.request_complete):
            self.transport.close()  # after what is written so far
            return
        self._next_exchange()
        if self.buffer or self.peer_finished:
            # The next request is already here (pipelining), or the client is done: start on
            # it in the loop's next pass, after this exchange has completed.
            self.loop.call_soon(self._process)

    def _hand_over(self, pending: bytes) -> None:
        """Give the socket and ``pending`` (unparsed bytes) to Tornado's connection, for good."""
        transport = self.transport
        self.busy = True  # nothing more is read or parsed here
        self.buffer = b""
        if transport.get_write_buffer_size():
            # Earlier answers are still being written: hand over once they are out.
            self.handover_pending = pending
            transport.pause_reading()
            transport.set_write_buffer_limits(high=0)
            return
        try:
            sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        except OSError:
            transport.abort()
            return
        self.handed_over = True
        self.delegate.on_close(self)
        transport.abort()  # closes only its own descriptor: the connection lives on in ``sock``
        self.app.adopt(sock, self.context.address, pending)

    def closed_after(self, data: bytes) -> None:
        self.transport.write(data)
        self.transport.close()

    # -- writing the response (what http.Exchange calls) ------------------------------------

    def request_read(self) -> None:
        """Nothing to do here: this class knows when the body was read."""

    def owe_response(self, owed: bool) -> None:
        """Nothing to do here: a FIN never closes while ``busy`` (``eof_received``)."""

    def set_close_callback(self, callback) -> None:
        self.close_callback = callback

    def write_whole(self, data: bytes) -> None:
        """Write a whole pre-encoded response (status line, headers, body) and finish."""
        if not self.closed:
            self.transport.write(data)
        self.finish()

    def write_headers(self, start_line, headers, chunk: bytes | None = None):
        """A response's status line and header fields, framed as Tornado frames them."""
        request = self.start_line
        status = start_line.code
        no_body = request.method == "HEAD" or status in _NO_BODY_STATUS or status < 200
        self.chunking = (
            request.version == "HTTP/1.1"
            and not no_body
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        )
        if "Content-Length" not in headers and not self.chunking and not no_body:
            self.keep_alive = False  # the body ends where the connection does
        if headers.get("Connection", "").lower() == "close":
            self.keep_alive = False
        if request.version == "HTTP/1.1":
            if not self.keep_alive:
                headers["Connection"] = "close"
        elif self.keep_alive and "Connection" not in headers:
            headers["Connection"] = "Keep-Alive"
        if self.chunking:
            headers["Transfer-Encoding"] = "chunked"
        if request.method == "HEAD" or status == 304:
            self.content_remaining = 0
        elif "Content-Length" in headers:
            self.content_remaining = int(headers["Content-Length"])
        else:
            self.content_remaining = None
        lines = [f"HTTP/1.1 {status} {start_line.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"illegal characters in a response header: {line!r}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if chunk:
            data += self._frame(chunk)
        return self._send(data)

    def write(self, chunk: bytes):
        """A piece of a streamed body; the future resolves once the socket can take more."""
        return self._send(self._frame(chunk))

    def _frame(self, chunk: bytes) -> bytes:
        remaining = self.content_remaining
        if remaining is not None:
            remaining -= len(chunk)
            self.content_remaining = remaining
            if remaining < 0:
                self.close()
                raise HTTPOutputError("Tried to write more data than Content-Length")
        if self.chunking and chunk:
            return b"%x\r\n%b\r\n" % (len(chunk), chunk)
        return chunk

    def _send(self, data: bytes):
        future = self.loop.create_future()
        if self.closed:
            future.set_exception(StreamClosedError())
            future.exception()
            return future
        if data:
            self.transport.write(data)
        if self.write_paused:
            if self.write_waiters is None:
                self.write_waiters = []
            self.write_waiters.append(future)
        else:
            future.set_result(None)
        return future

    def finish(self) -> None:
        """The response is complete (the chunked body's last chunk goes out here)."""
        remaining = self.content_remaining
        if remaining and not self.closed:
            self.close()
            raise HTTPOutputError(f"Tried to write {remaining} bytes less than Content-Length")
        if self.chunking and not self.closed:
            self.transport.write(b"0\r\n\r\n")
        self._response_done()

    def close(self) -> None:
        """Close at once, dropping what is not written yet (an answer that cannot finish)."""
        if not self.closed and self.transport is not None:
            self.transport.abort()

    def close_when_written(self) -> None:
        """Close once everything written so far has reached the socket."""
        if not self.closed:
            self.transport.close()

    def close_connection(self) -> None:
        """Close an idle or stale connection (the sweeps and the drain)."""
        self.close_when_written()
