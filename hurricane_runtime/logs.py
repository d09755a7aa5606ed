"""Logging that works with no configuration: plain text by default, JSON lines on request.

Everything the runtime logs goes through the ``hurricane_runtime`` logger; access lines go
through its child ``hurricane_runtime.access``. ``install`` only adds a handler where the
project configured none:

- if the ``hurricane_runtime`` logger has no handler of its own, one stream handler (stdout)
  is attached to it with our formatter, and propagation is turned off so that a project's root
  handler does not print every line a second time;
- if the root logger has no handler either, the same handler is attached to root so that
  errors logged by Django (``django.request``) and by the project are printed, in the same
  format. (With DEBUG on and text lines Django's own console handler prints them already.)

A project that configures either logger in ``LOGGING`` keeps full control; it can use
``hurricane_runtime.logs.JSONFormatter`` or ``TextFormatter`` in its own handlers.

Request context (request id, traceparent) is read from ``hurricane_runtime.context`` at format
time. The server binds those in a fresh context for each request, so a line logged outside a
request carries none and a line of one request never carries another's id.
"""

import asyncio
import atexit
import collections
import json
import logging
import sys
import time
import traceback

from . import context
from .events import RequestRecord

logger = logging.getLogger("hurricane_runtime")
access_logger = logging.getLogger("hurricane_runtime.access")

# One encoder for every line: ``json.dumps`` with options builds a new encoder per call.
_encode_json = json.JSONEncoder(default=str, ensure_ascii=False).encode
# Attributes of a LogRecord that are not ``extra`` fields.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Fields of an access line, in output order.
ACCESS_FIELDS = (
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "queue_wait_ms",
    "remote_addr",
    "bytes",
)


def _request_context(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """Request id and traceparent: from ``extra`` when given, else from the current context.

    A record that names its request id (the access log does) is taken as it is: it may be
    written on the event loop, whose context belongs to no request in particular.
    """
    if hasattr(record, "request_id"):
        return record.request_id, getattr(record, "traceparent", None)
    return context.request_id.get(), context.traceparent.get()


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        request_id, traceparent = _request_context(record)
        entry = {
            "timestamp": _iso_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id,
            "traceparent": traceparent,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode_json(entry)

    def access_line(self, record: RequestRecord, created: float) -> str:
        """What ``format`` makes of an access log record, without the record."""
        duration_ms = round(record.duration * 1000, 3)
        entry = {
            "timestamp": _iso_timestamp(created),
            "level": "INFO",
            "logger": access_logger.name,
            "message": _access_message(record, duration_ms),
        }
        entry.update(_access_fields(record, duration_ms))
        return _encode_json(entry)


class TextFormatter(logging.Formatter):
    """Readable lines for development; the request id is appended when there is one."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id, _ = _request_context(record)
        if request_id and record.name != access_logger.name:  # access lines already show it
            line += f" [request_id={request_id}]"
        return line

    def access_line(self, record: RequestRecord, created: float) -> str:
        """What ``format`` makes of an access log record, without the record."""
        seconds = int(created)
        if seconds != self._cached_second:
            # formatTime's default: local time, then ",<milliseconds>".
            self._cached_text = time.strftime(self.default_time_format, self.converter(seconds))
            self._cached_second = seconds
        message = _access_message(record, round(record.duration * 1000, 3))
        return (
            f"{self._cached_text},{int((created - seconds) * 1000):03d} INFO "
            f"{access_logger.name} {message}"
        )

    _cached_second = None
    _cached_text = ""


def _access_fields(record: RequestRecord, duration_ms: float) -> dict:
    """The fields of an access line, in output order (request context first)."""
    return {
        "request_id": record.request_id or None,
        # Only from the record: never guessed from whatever context the listener runs in.
        "traceparent": record.traceparent,
        "method": record.method,
        "path": record.path,
        "route": record.route,
        "status": record.status,
        "duration_ms": duration_ms,
        "queue_wait_ms": round(record.queue_wait * 1000, 3),
        "remote_addr": record.remote_addr,
        "bytes": record.response_bytes,
    }


def _access_message(record: RequestRecord, duration_ms: float) -> str:
    return (
        f"{record.remote_addr} {record.method} {record.path} {record.status} "
        f"{record.response_bytes}B {duration_ms:.1f}ms request_id={record.request_id}"
    )


_our_handler: logging.Handler | None = None  # the last handler ``configure`` attached
_last_second: list = [None, ""]  # (second, its formatted text): lines of one second share it


def _iso_timestamp(created: float) -> str:
    seconds = int(created)
    cached_second, text = _last_second
    if seconds != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second[:] = [seconds, text]
    return f"{text}.{int((created - seconds) * 1000):03d}Z"


def make_handler(log_format: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure(log_format: str = "text", django_debug: bool | None = None) -> logging.Handler | None:
    """Attach our handler where the project configured none; return it (None if not added).

    ``django_debug`` defaults to ``settings.DEBUG``: while it is on, Django's own console
    handler already prints request errors, so in text mode root is left alone.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log_format must be 'text' or 'json', not {log_format!r}")
    if logger.handlers:
        return None
    global _our_handler
    handler = _our_handler = make_handler(log_format)
    logger.addHandler(handler)
    logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    root = logging.getLogger()
    if django_debug is None:
        django_debug = _django_debug()
    if not root.handlers and (log_format == "json" or not django_debug):
        root.addHandler(handler)
    return handler


def _django_debug() -> bool:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return bool(settings.DEBUG)
    except ImproperlyConfigured:
        return False


class AccessLog:
    """Listeners that write one access line per finished request.

    When the line would only reach the handler ``configure`` attached (no handler, filter or
    level of the project's in the way), it is formatted here, without a ``LogRecord``, and
    the lines of one event-loop iteration are written together, once, at its end: what
    ``logging`` would print, at a fraction of the cost per request. Otherwise the line goes
    through ``logging`` like any other.
    """

    def __init__(self, log_probes: bool = False):
        self.log_probes = log_probes
        self.handler = _our_handler  # used only while it is the only handler on the way
        # A deque: appends and pops stay whole even if a thread without a loop writes at once
        # while the loop flushes.
        self._pending: collections.deque[str] = collections.deque()
        self._flush_scheduled = False
        if self.handler is not None:
            atexit.register(self.flush)  # lines of a last loop iteration that never ended

    def request_finished(self, record: RequestRecord) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        formatter = self._direct_formatter()
        if formatter is None:
            self._log(record)
            return
        self._pending.append(formatter.access_line(record, time.time()))
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop on this thread: write at once
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def _direct_formatter(self):
        """Our formatter when the line would reach our handler alone, else None."""
        handler = self.handler
        if handler is None:
            return None
        handlers = logger.handlers
        if (
            access_logger.handlers
            or access_logger.filters
            or not access_logger.propagate
            or logger.propagate
            or logger.filters
            or len(handlers) != 1
            or handlers[0] is not handler
            or handler.filters
            or handler.level > logging.INFO
        ):
            return None
        formatter = handler.formatter
        if type(formatter) is TextFormatter or type(formatter) is JSONFormatter:
            return formatter
        return None

    def flush(self) -> None:
        """Write the pending lines with one write."""
        self._flush_scheduled = False
        pending = self._pending
        if not pending:
            return
        lines = [pending.popleft() for _ in range(len(pending))]
        handler = self.handler
        terminator = handler.terminator
        text = terminator.join(lines) + terminator
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        except Exception:
            if logging.raiseExceptions:  # as logging's handleError does
                traceback.print_exc(file=sys.stderr)
        finally:
            handler.release()

    def _log(self, record: RequestRecord) -> None:
        duration_ms = round(record.duration * 1000, 3)
        # makeRecord + handle is what ``info`` does, minus the stack walk that finds the
        # caller's file and line: an access line knows where it comes from.
        line = access_logger.makeRecord(
            access_logger.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %s %s %sB %.1fms request_id=%s",
            (
                record.remote_addr,
                record.method,
                record.path,
                record.status,
                record.response_bytes,
                duration_ms,
                record.request_id,
            ),
            None,
            func="request_finished",
            extra=_access_fields(record, duration_ms),
        )
        access_logger.handle(line)

    def probe_finished(self, record: RequestRecord) -> None:
        if self.log_probes:
            self.request_finished(record)
