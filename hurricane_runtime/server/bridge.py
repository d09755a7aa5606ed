"""The Django side of a request: environ in, Django's handler, response chunks out.

Everything here runs on a worker thread, never on the IOLoop. Django's handler (and with it
the middleware chain) is built once at start-up; per request we build a WSGI environ, because
``WSGIRequest`` is Django's best-tested request parser, and call ``get_response`` directly
instead of going through a WSGI ``start_response`` round trip.

A response leaves in one of two shapes:

- buffered (``HttpResponse``): headers and body are handed to the loop in one message and the
  worker is free at once, so a slow reader never holds a thread;
- streamed (``StreamingHttpResponse``, ``FileResponse``): the worker produces chunks and hands
  each one to the loop. A small window of unsent chunks bounds memory: when the client reads
  slowly the worker waits, and gives up after ``body_timeout``.
"""

import contextvars
import io
import logging
import random
import re
import sys
import threading
import time
from urllib.parse import unquote_to_bytes, urlsplit

from django.conf import settings
from django.core import signals
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.http import Http404, HttpResponse
from django.urls import set_script_prefix
from django.views.static import serve as serve_file
from tornado.httputil import HTTPHeaders

from .. import context

logger = logging.getLogger("hurricane_runtime")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}").fullmatch
# W3C trace context: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT_OK = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}").fullmatch
STREAM_WINDOW = 4  # chunks handed to the loop but not yet written to the socket
FILE_BLOCK_SIZE = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


def new_request_id() -> str:
    # 128 random bits without a system call; an id for correlating logs, not a secret.
    return f"{random.getrandbits(128):032x}"


_ENVIRON_KEYS: dict[str, str] = {}  # header name -> environ key ("" for: leave it out)
_ENVIRON_KEYS_MAX = 1024  # header names come from clients: remember a bounded number


def _environ_key(name: str) -> str:
    """The WSGI environ key of a header field name, "" when it must not reach Django."""
    if "_" in name:
        # "X_Forwarded_For" would land in the same environ key as "X-Forwarded-For"; drop it
        # so a client cannot spoof a proxy's header.
        key = ""
    else:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_LENGTH" or key == "TRANSFER_ENCODING":
            key = ""  # the body is already de-chunked and measured
        elif key != "CONTENT_TYPE":
            key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


class DjangoBridge:
    """Runs one request through Django on the calling (worker) thread."""

    def __init__(self, config, post):
        """``post(fn, *args)`` runs ``fn(*args)`` on the IOLoop (a ``LoopChannel.post``)."""
        self.config = config
        self.post = post
        self.handler = BaseHandler()
        self.handler.load_middleware()  # once: never per request
        self.server_name = config.bind
        self.server_port = str(config.port)
        self.stream_timeout = config.body_timeout
        self.file_prefixes = self._file_prefixes(config)
        # Django's WSGIHandler works this out per request; with our environ (no SCRIPT_URL,
        # SCRIPT_NAME always "") it is FORCE_SCRIPT_NAME or "", so once is enough.
        self.script_prefix = get_script_name({"SCRIPT_NAME": ""})
        self._thread = threading.local()  # per worker thread: its base context

    @staticmethod
    def _file_prefixes(config) -> list[tuple[str, str, str]]:
        """(URL prefix, folder, route label) for static and media files, when enabled."""
        prefixes = []
        for enabled, url_name, root_name in (
            (config.static, "STATIC_URL", "STATIC_ROOT"),
            (config.media, "MEDIA_URL", "MEDIA_ROOT"),
        ):
            url = getattr(settings, url_name, None)
            root = getattr(settings, root_name, None)
            if not enabled:
                continue
            if not url or not root or urlsplit(url).netloc:
                logger.warning(
                    "not serving %s: %s and %s must be a local path and a folder",
                    url_name,
                    url_name,
                    root_name,
                )
                continue
            prefix = urlsplit(url).path
            if not prefix.endswith("/"):
                prefix += "/"
            prefixes.append((prefix, str(root), prefix.lstrip("/") + "<path:path>"))
        return prefixes

    # -- environ -------------------------------------------------------------------------

    def environ(self, exchange, body: bytes) -> dict:
        start_line = exchange.start_line
        path, query, authority = exchange.target[:3]  # checked by validate.py
        environ = {
            "REQUEST_METHOD": start_line.method,
            "SCRIPT_NAME": "",
            # PEP 3333: PATH_INFO is the percent-decoded path as latin-1 text.
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1") if "%" in path else path,
            "QUERY_STRING": query,
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": self.server_port,
            "SERVER_PROTOCOL": start_line.version,
            "REMOTE_ADDR": exchange.remote_addr,
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in exchange.headers.get_all():
            key = _ENVIRON_KEYS.get(name)
            if key is None:
                key = _environ_key(name)
            if not key:
                continue
            if key in environ:
                environ[key] += "," + value
            else:
                environ[key] = value
        if authority is not None:
            # RFC 9112 section 3.2.2: for absolute-form the target's authority is the host.
            environ["HTTP_HOST"] = authority
        return environ

    # -- running a request ---------------------------------------------------------------

    def _base_context(self) -> contextvars.Context:
        """This worker thread's pristine context: only the script prefix is set in it.

        Every request runs in a copy (O(1)), so whatever it sets, ours or Django's, is gone
        with the copy; the copy only saves setting the script prefix (an asgiref ``Local``,
        which starts empty in a brand-new context) once per request.
        """
        base = self._thread.__dict__.get("context")
        if base is None:
            base = self._thread.context = contextvars.Context()
            base.run(set_script_prefix, self.script_prefix)
        return base

    def run(self, exchange) -> None:
        """Worker thread entry point: run the request in its own context."""
        exchange.queue_wait = time.perf_counter() - exchange.submitted_at
        if exchange.closed:  # the client left while the request waited for a worker
            self.post(exchange.abandon)
            return
        self._base_context().copy().run(self._run, exchange)

    def _run(self, exchange) -> None:
        headers = exchange.headers
        request_id = headers.get(REQUEST_ID_HEADER)
        if request_id is None or not _REQUEST_ID_OK(request_id):
            request_id = new_request_id()
        exchange.request_id = request_id
        context.request_id.set(request_id)
        traceparent = headers.get("traceparent")
        if traceparent is not None and _TRACEPARENT_OK(traceparent.strip()):
            exchange.traceparent = traceparent.strip()
            context.traceparent.set(exchange.traceparent)

        body = b"".join(exchange.body) if exchange.body else b""
        exchange.body = None
        request = None
        try:
            environ = self.environ(exchange, body)
            signals.request_started.send(sender=self.__class__, environ=environ)
            request = WSGIRequest(environ)
            response = self._get_response(request)
        except Exception:
            # Django turns view errors into 500 responses itself; this is for errors around
            # it (a broken environ, a failing request_started receiver).
            logger.exception("error handling %s %s", exchange.start_line.method, exchange.path)
            response = HttpResponse(
                b"Internal Server Error\n", status=500, content_type="text/plain"
            )
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            exchange.route = match.route
        try:
            self._respond(exchange, request, response, request_id)
        except Exception:
            # Nothing was handed to the loop (streams handle their own errors): closing the
            # connection is the only answer left, and it frees the exchange.
            logger.exception("error encoding the response to %s", exchange.path)
            self.post(exchange.abort)
        finally:
            try:
                response.close()  # sends request_finished: closes stale DB connections
            except Exception:
                logger.exception("error closing the response")
            if request is not None:
                request.close()

    def _get_response(self, request):
        path = request.path_info
        for prefix, root, route in self.file_prefixes:
            if path.startswith(prefix) and request.method in ("GET", "HEAD"):
                request.route_override = route
                try:
                    return serve_file(request, path[len(prefix) :], document_root=root)
                except (Http404, SuspiciousOperation):  # missing, or "../" outside the root
                    return HttpResponse(b"Not Found\n", status=404, content_type="text/plain")
        return self.handler.get_response(request)

    def _respond_whole(self, exchange, response, status, request_id, send_body) -> None:
        """Encode status line, headers and body into one bytes object, here on the worker.

        The loop then only writes it: no header objects, no formatting, no second write.
        Django already refuses CR/LF in header names and values, so lines are safe to join.
        """
        content = response.content
        lines = [f"HTTP/1.1 {status} {response.reason_phrase}\r\n"]
        has_length = has_id = False
        for name, value in response.items():
            lines.append(f"{name}: {value}\r\n")
            lower = name.lower()
            if lower == "content-length":
                has_length = True
            elif lower == "x-request-id":
                has_id = True
        for cookie in response.cookies.values():
            lines.append(f"Set-Cookie: {cookie.OutputString()}\r\n")
        if not has_length and status not in _NO_BODY_STATUS:
            lines.append(f"Content-Length: {len(content)}\r\n")
        if not has_id:
            lines.append(f"X-Request-ID: {request_id}\r\n")
        keep_alive = exchange.keep_alive()
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif exchange.start_line.version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        if send_body and content:
            data += content
        else:
            content = b""
        self.post(exchange.send_encoded, status, data, len(content), not keep_alive)

    def _respond(self, exchange, request, response, request_id: str) -> None:
        if request is not None and getattr(request, "route_override", None):
            exchange.route = request.route_override
        status = response.status_code
        send_body = exchange.start_line.method != "HEAD" and status not in _NO_BODY_STATUS
        if not response.streaming:
            self._respond_whole(exchange, response, status, request_id, send_body)
            return
        headers = HTTPHeaders()
        for name, value in response.items():
            headers.add(name, value)
        for cookie in response.cookies.values():
            headers.add("Set-Cookie", cookie.OutputString())
        if REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = request_id
        window = exchange.window = threading.Semaphore(STREAM_WINDOW)
        self.post(exchange.send_head, status, response.reason_phrase, headers)
        if not send_body:
            self.post(exchange.end_stream)
            return
        try:
            filelike = getattr(response, "file_to_stream", None)
            if filelike is not None:
                chunks = iter(lambda: filelike.read(FILE_BLOCK_SIZE), b"")
            else:
                chunks = iter(response)
            for chunk in chunks:
                if not chunk:
                    continue
                if not window.acquire(timeout=self.stream_timeout):
                    logger.info("client of %s stopped reading; dropping it", exchange.path)
                    self.post(exchange.abort)
                    return
                if exchange.closed:
                    self.post(exchange.abort)
                    return
                self.post(exchange.send_chunk, bytes(chunk))
        except Exception:
            logger.exception("error while streaming %s", exchange.path)
            self.post(exchange.abort)
            return
        self.post(exchange.end_stream)
