"""Tornado's HTTP/1.1 connection classes, trimmed for the app port's hot path.

``AppServerConnection`` runs one client connection: it builds an ``AppConnection`` per request
and hands it to ``http.AppDelegate.start_request`` before anything is read. ``AppConnection``
parses request heads with the runtime's strict field-line parser (``fields.py``) and writes a
whole pre-encoded response without a write future when the socket takes it at once
(``stream.AppStream.write_now``). Body framing, keep-alive, 100-continue and streamed writes
stay Tornado's.
"""

import asyncio
import logging

from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.iostream import StreamClosedError, UnsatisfiableReadError

from .fields import parse_header_section

gen_log = logging.getLogger("tornado.general")


class AppConnection(HTTP1Connection):
    """One request/response exchange on a connection; parses request heads strictly and fast."""

    def _parse_headers(self, data: bytes):
        # Until the delegate's finish(), an end-of-file waits for the body reads (stream.py).
        self.stream.reading_request = True
        return parse_header_section(data.decode("latin-1"))

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

    async def _server_request_loop(self, delegate) -> None:
        # Tornado's loop, minus the HTTPServer.start_request indirection (no xheaders, our
        # delegate) and the ``asyncio.sleep(0)`` after every request: a request that went to
        # a worker thread has already yielded to the loop while it waited for its response.
        stream, params, context = self.stream, self.params, self.context
        app = delegate.request_callback
        try:
            while True:
                conn = AppConnection(stream, False, params, context)
                exchange = app.start_request(self, conn)
                try:
                    ret = await conn.read_response(exchange)
                except (StreamClosedError, UnsatisfiableReadError, asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not ret:
                    return
                if not exchange.submitted:
                    # Answered without a worker (``OPTIONS *``, async views): possibly without
                    # ever yielding, so let the other connections run before the next request.
                    await asyncio.sleep(0)
        finally:
            delegate.on_close(self)
