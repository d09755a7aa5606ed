"""Tornado's ``HTTP1Connection`` with the runtime's header section parser (``fields.py``).

Tornado builds one ``HTTP1Connection`` per request and hands it to the delegate
(``http.AppDelegate.start_request``) before it reads anything; the delegate turns it into an
``AppConnection``. Only ``_parse_headers`` differs, so everything else (body framing, keep-alive,
100-continue, writing) stays Tornado's.
"""

from tornado.http1connection import HTTP1Connection

from .fields import parse_header_section


class AppConnection(HTTP1Connection):
    """One request/response exchange on a connection; parses request heads strictly and fast."""

    def _parse_headers(self, data: bytes):
        # Until the delegate's finish(), an end-of-file waits for the body reads (stream.py).
        self.stream.reading_request = True
        return parse_header_section(data.decode("latin-1"))
