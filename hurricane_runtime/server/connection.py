"""Tornado's HTTP/1.1 connection classes, trimmed, for connections the protocol hands over.

Those are the connections whose requests need more than ``protocol.AppProtocol`` does: chunked
request bodies, 100-continue, websocket upgrades and async views. ``AppServerConnection`` runs
one such client connection: it builds an ``AppConnection`` per request and hands it to
``http.AppDelegate.start_request`` before anything is read. ``AppConnection``
reads a request with ``read_request``, a server-only ``HTTP1Connection._read_message``: one
coroutine instead of two, no decompression wrapper, no header timer (the delegate sweeps stale
connections once a second) and no exception-logging context objects around every delegate call;
the body is read by Tornado's own readers, with its body timeout, and only when the head
announces one. Request heads are parsed by the runtime's strict field-line parser
(``fields.py``); a whole pre-encoded response is written without a write future when the socket
takes it at once (``stream.AppStream.write_now``). Response framing, keep-alive, 100-continue
and streamed writes stay Tornado's.
"""

import asyncio
import logging
import re

from tornado import gen
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httputil import HTTPInputError, parse_request_start_line
from tornado.iostream import StreamClosedError, UnsatisfiableReadError

from .fields import parse_header_section

gen_log = logging.getLogger("tornado.general")
app_log = logging.getLogger("tornado.application")

# The end of a request head. Bare LFs are allowed here only so that such a head is read whole
# and then refused by ``parse_header_section``, instead of waiting for a CRLFCRLF.
HEAD_END = re.compile(b"\r?\n\r?\n")


class AppConnection(HTTP1Connection):
    """One request/response exchange on a connection; reads requests strictly and fast."""

    # Set when the request loop yielded to the event loop until the response was written (a
    # worker thread or an async view produced it), rather than getting it in the same step.
    waited_for_response = False

    def _parse_headers(self, data: bytes):
        # Until the delegate's finish(), an end-of-file waits for the body reads (stream.py).
        self.stream.reading_request = True
        return parse_header_section(data.decode("latin-1"))

    async def read_request(self, delegate) -> bool:
        """Read one request into ``delegate`` and wait for its response to be written.

        True when the connection may carry another request. What Tornado's
        ``HTTP1Connection._read_message`` does on a server, in the same order: the delegate
        hears of every request whose head it got either by ``finish()`` or, if the request
        ended otherwise, by ``on_connection_close()``; a malformed head is answered with a
        bare 400 and the connection closed.
        """
        stream = self.stream
        head = await stream.read_until_regex(HEAD_END, max_bytes=self.params.max_header_size)
        told = True  # the delegate knows how its request ended (or never heard of it)
        try:
            start_line, headers = self._parse_headers(head)
            start_line = parse_request_start_line(start_line)
            self._request_start_line = start_line
            self._request_headers = headers
            self._disconnect_on_finish = not self._can_keep_alive(start_line, headers)
            told = False
            waiter = delegate.headers_received(start_line, headers)
            if waiter is not None:
                await waiter
            if self.stream is None:  # detached: a websocket took the socket
                told = True
                return False
            if headers.get("Expect") == "100-continue" and not self._write_finished:
                stream.write(b"HTTP/1.1 100 (Continue)\r\n\r\n")
            if ("Content-Length" in headers or "Transfer-Encoding" in headers) and not (
                await self._read_request_body(headers, delegate)
            ):
                return False
            self._read_finished = True
            if not self._write_finished:
                told = True
                delegate.finish()
            finished = self._finish_future
            if not finished.done() and self.stream is not None and not stream.closed():
                # Learn about a client that leaves while the response is being produced.
                stream.set_close_callback(self._on_connection_close)
                self.waited_for_response = True
                await finished
            return self.stream is not None
        except HTTPInputError as error:
            gen_log.info("Malformed HTTP message from %s: %s", self.context, error)
            await stream.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.close()
            return False
        except (StreamClosedError, UnsatisfiableReadError, asyncio.CancelledError):
            raise
        except Exception:
            app_log.error("Uncaught exception", exc_info=True)
            self.close()
            return False
        finally:
            if not told:
                try:
                    delegate.on_connection_close()
                except Exception:
                    app_log.error("Uncaught exception", exc_info=True)
            self._clear_callbacks()

    async def _read_request_body(self, headers, delegate) -> bool:
        """Tornado's body readers under its body timeout; False when the timeout ran out."""
        body = self._read_body(0, headers, delegate)
        if body is None:
            return True
        if self._body_timeout is None:
            await body
            return True
        try:
            await gen.with_timeout(
                self.stream.io_loop.time() + self._body_timeout,
                body,
                quiet_exceptions=StreamClosedError,
            )
        except TimeoutError:
            gen_log.info("Timeout reading body from %s", self.context)
            self.stream.close()
            return False
        return True

    def _clear_callbacks(self) -> None:
        # Tornado's, minus telling the stream when its close callback is already cleared: this
        # runs three times per request (new connection object, response finished, request done).
        self._write_callback = None
        self._write_future = None
        self._close_callback = None
        stream = self.stream
        if stream is not None and stream._close_callback is not None:
            stream.set_close_callback(None)

    # -- what ``http.Exchange`` asks of its connection (``protocol.AppProtocol`` answers too) --

    def request_read(self) -> None:
        """The request's body has been read: an end-of-file now means the client left."""
        self.stream.reading_request = False

    def owe_response(self, owed: bool) -> None:
        """While a response is owed, a client's FIN does not close the socket (stream.py)."""
        stream = self.stream
        if stream is not None:
            stream.response_owed = owed

    def close_when_written(self) -> None:
        """Close the connection once everything written so far has reached the socket."""
        try:
            # An empty write resolves once everything before it reached the socket.
            self.stream.write(b"").add_done_callback(lambda _: self.close())
        except Exception:
            self.close()

    def write_whole(self, data: bytes) -> None:
        """Write a whole pre-encoded response (status line, headers, body) and finish.

        ``write`` plus ``finish`` without a write future when the socket takes the response at
        once: the request loop then learns that the response is done in the same iteration.
        """
        if not self.stream.closed():
            self._pending_write = self.stream.write_now(data)
        self.finish()


class AppServerConnection(HTTP1ServerConnection):
    """One client connection: its requests, one ``AppConnection`` each, one after the other."""

    def close_connection(self) -> None:
        """Close at once (idle or stale connections, on the sweeps and the drain)."""
        self.stream.close()

    async def _server_request_loop(self, delegate) -> None:
        # Tornado's loop, minus the HTTPServer.start_request indirection (no xheaders, our
        # delegate) and the ``asyncio.sleep(0)`` after every request: a request whose response
        # came from a worker thread or an async view has already yielded to the loop.
        stream, params, context = self.stream, self.params, self.context
        app = delegate.request_callback
        try:
            while True:
                conn = AppConnection(stream, False, params, context)
                exchange = app.start_request(self, conn)
                try:
                    ret = await conn.read_request(exchange)
                except (StreamClosedError, UnsatisfiableReadError, asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not ret:
                    return
                if not conn.waited_for_response:
                    # Answered at once (``OPTIONS *``, a refused request), possibly without ever
                    # yielding: let the other connections run before the next request.
                    await asyncio.sleep(0)
        finally:
            delegate.on_close(self)
