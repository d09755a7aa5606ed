"""Logs: plain text by default, JSON lines on request, no leaking request context."""

import contextlib
import contextvars
import dataclasses
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from observability_helpers import isolated_logging, observability_config  # noqa: F401

from hurricane_runtime import context, logs
from hurricane_runtime.events import Observers, RequestRecord
from hurricane_runtime.observability import install
from hurricane_runtime.state import RuntimeState

pytestmark = pytest.mark.usefixtures("isolated_logging")

ACCESS_KEYS = {
    "timestamp",
    "level",
    "logger",
    "message",
    "request_id",
    "traceparent",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "queue_wait_ms",
    "remote_addr",
    "bytes",
}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def record(request_id="req-1", path="/api/items/7/", status=200) -> RequestRecord:
    return RequestRecord(
        method="GET",
        route="api/items/<int:pk>/",
        path=path,
        status=status,
        duration=0.0123,
        queue_wait=0.0004,
        request_id=request_id,
        remote_addr="10.1.2.3",
        response_bytes=512,
    )


def config(**overrides):
    """Logging tests keep metrics off: only the log listeners are under test."""
    return observability_config(**{"no_metrics": True, **overrides})


def json_lines(text: str) -> list[dict]:
    """Every line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines()]


def test_json_access_lines_parse_line_by_line_with_every_field(capsys):
    observers = Observers()
    install(config(log_format="json"), RuntimeState(1, 1), observers)
    for index in range(50):
        observers.notify(observers.request_finished, record(f"req-{index}", f"/api/items/{index}/"))

    lines = json_lines(capsys.readouterr().out)
    assert len(lines) == 50
    first = lines[0]
    assert set(first) >= ACCESS_KEYS
    assert first["logger"] == "hurricane_runtime.access"
    assert first["level"] == "INFO"
    assert first["request_id"] == "req-0"
    assert first["path"] == "/api/items/0/"
    assert first["route"] == "api/items/<int:pk>/"
    assert first["status"] == 200
    assert first["duration_ms"] == 12.3
    assert first["queue_wait_ms"] == 0.4
    assert first["remote_addr"] == "10.1.2.3"
    assert first["bytes"] == 512
    assert first["timestamp"].endswith("Z")
    assert [line["request_id"] for line in lines] == [f"req-{i}" for i in range(50)]


def test_plain_text_is_the_default(capsys):
    observers = Observers()
    install(config(), RuntimeState(1, 1), observers)
    observers.notify(observers.request_finished, record())
    line = capsys.readouterr().out.strip()
    assert "INFO hurricane_runtime.access 10.1.2.3 GET /api/items/7/ 200 512B 12.3ms" in line
    assert "request_id=req-1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_probe_requests_are_logged_only_when_asked(capsys):
    observers = Observers()
    install(config(log_format="json"), RuntimeState(1, 1), observers)
    observers.notify(observers.probe_finished, record(path="/ready"))
    assert capsys.readouterr().out == ""

    logging.getLogger("hurricane_runtime").handlers.clear()
    observers = Observers()
    install(config(log_format="json", access_log_probes=True), RuntimeState(1, 1), observers)
    observers.notify(observers.probe_finished, record(path="/ready"))
    (line,) = json_lines(capsys.readouterr().out)
    assert line["path"] == "/ready"


@contextlib.contextmanager
def unconfigured_root():
    """A root logger without handlers, as in a project that configured no logging.

    pytest adds its capture handlers to root around the test call, so this runs in the test.
    """
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers.clear()
    try:
        yield root
    finally:
        root.handlers[:] = saved


def test_errors_are_json_with_the_request_context_and_the_traceback(capsys):
    with unconfigured_root():
        logs.configure("json")
        _log_an_error_in_a_request()
    django_line, runtime_line = json_lines(capsys.readouterr().out)
    assert django_line["logger"] == "django.request"
    assert django_line["level"] == "ERROR"
    assert django_line["request_id"] == "abc-123"
    assert django_line["traceparent"] == TRACEPARENT
    assert "ZeroDivisionError" in django_line["exception"]
    assert runtime_line["request_id"] == "abc-123"


def _log_an_error_in_a_request():
    in_request = contextvars.Context()

    def view():
        context.request_id.set("abc-123")
        context.traceparent.set(TRACEPARENT)
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            # What Django's handler does for an unhandled view exception.
            logging.getLogger("django.request").error("Internal Server Error: /boom", exc_info=True)
        logging.getLogger("hurricane_runtime").error("worker failed")

    in_request.run(view)


def test_request_context_never_leaks_into_the_next_request_on_the_same_thread():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JSONFormatter())
    app_logger = logging.getLogger("tests.app")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    app_logger.propagate = False

    def handle(request_id, traceparent):
        # As the server does: bind only what the request carries, in a fresh context.
        if request_id:
            context.request_id.set(request_id)
        if traceparent:
            context.traceparent.set(traceparent)
        app_logger.info("handling")

    try:
        with ThreadPoolExecutor(max_workers=1) as one_worker:  # same thread for every request
            for request_id, traceparent in [
                ("first", TRACEPARENT),
                (None, None),
                ("third", None),
                (None, None),
            ]:
                fresh = contextvars.Context()
                one_worker.submit(fresh.run, handle, request_id, traceparent).result()
        app_logger.info("outside any request")
    finally:
        app_logger.removeHandler(handler)

    lines = json_lines(stream.getvalue())
    assert [(line["request_id"], line["traceparent"]) for line in lines] == [
        ("first", TRACEPARENT),
        (None, None),
        ("third", None),
        (None, None),
        (None, None),
    ]


def test_a_project_logging_config_is_left_alone(capsys):
    runtime_logger = logging.getLogger("hurricane_runtime")
    stream = io.StringIO()
    projects_handler = logging.StreamHandler(stream)
    runtime_logger.addHandler(projects_handler)
    runtime_logger.setLevel(logging.WARNING)

    observers = Observers()
    install(config(log_format="json"), RuntimeState(1, 1), observers)
    assert runtime_logger.handlers == [projects_handler]
    assert runtime_logger.level == logging.WARNING
    observers.notify(observers.request_finished, record())
    assert capsys.readouterr().out == ""  # the project said WARNING: no access lines
    assert stream.getvalue() == ""


def test_root_gets_our_json_handler_only_when_the_project_has_none():
    with unconfigured_root() as root:
        handler = logs.configure("json")
        assert root.handlers == [handler]
        assert logging.getLogger("hurricane_runtime").propagate is False  # no double lines

    logging.getLogger("hurricane_runtime").handlers.clear()
    with unconfigured_root() as root:
        projects_root_handler = logging.NullHandler()
        root.addHandler(projects_root_handler)
        logs.configure("json")
        assert root.handlers == [projects_root_handler]


def test_text_mode_prints_django_errors_unless_django_debug_does_already():
    with unconfigured_root() as root:
        logs.configure("text", django_debug=True)
        assert root.handlers == []  # Django's console handler prints them while DEBUG is on

    logging.getLogger("hurricane_runtime").handlers.clear()
    with unconfigured_root() as root:
        handler = logs.configure("text", django_debug=False)
        assert root.handlers == [handler]


def test_a_traceparent_on_the_record_is_passed_through(capsys):
    logs.configure("json")
    context_free = contextvars.Context()
    context_free.run(
        logging.getLogger("hurricane_runtime.access").info,
        "GET / 200",
        extra={"request_id": "r", "traceparent": TRACEPARENT, "status": 200},
    )
    (line,) = json_lines(capsys.readouterr().out)
    assert line["traceparent"] == TRACEPARENT
    assert line["status"] == 200


def test_bad_log_format_is_a_clear_error():
    with pytest.raises(ValueError, match="log_format"):
        logs.configure("yaml")


def test_access_lines_take_request_context_from_the_record_never_from_the_loop(capsys):
    """The listener may run on the event loop inside another request's context."""
    observers = Observers()
    install(config(log_format="json"), RuntimeState(1, 1), observers)
    someone_elses = contextvars.Context()

    def finish_on_the_loop():
        context.request_id.set("someone-else")
        context.traceparent.set(TRACEPARENT)
        observers.notify(observers.request_finished, record("mine"))
        carried = dataclasses.replace(
            record("mine"), traceparent="00-11111111111111111111111111111111-2222222222222222-01"
        )
        observers.notify(observers.request_finished, carried)

    someone_elses.run(finish_on_the_loop)
    plain, carried = json_lines(capsys.readouterr().out)
    assert (plain["request_id"], plain["traceparent"]) == ("mine", None)
    assert carried["traceparent"] == "00-11111111111111111111111111111111-2222222222222222-01"
