"""Metrics, webhooks and JSON logs of a real ``manage.py serve`` (fixture ``start_serve``)."""

import base64
import json
import re
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"end-to-end-webhook-secret-bytes!").decode()
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def scrape(served) -> dict[str, list]:
    status, body = served.probe_get("/metrics")
    assert status == 200
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def samples_named(families, name) -> list:
    return [s for samples in families.values() for s in samples if s.name == name]


def header(headers: dict, name: str) -> str | None:
    """A response header, whatever its case on the wire."""
    return {key.lower(): value for key, value in headers.items()}.get(name.lower())


def test_the_metrics_endpoint_counts_real_requests_by_url_pattern(start_serve):
    served = start_serve("--workers", "2")
    for pk in range(1, 30):  # 29 distinct raw paths, one pattern
        served.get(f"/items/{pk}/")
    for _ in range(3):
        assert served.get("/json/")[0] == 200
    for index in range(20):
        assert served.get(f"/no/such/page/{index}")[0] == 404
    assert served.request("POST", "/echo/", body=b"x")[0] == 200
    assert served.get("/error/")[0] == 500

    families = scrape(served)
    requests = {
        (s.labels["method"], s.labels["status"], s.labels["route"]): s.value
        for s in samples_named(families, "hurricane_requests_total")
    }
    assert requests[("GET", "2xx", "json/")] == 3
    assert requests[("POST", "2xx", "echo/")] == 1
    assert requests[("GET", "5xx", "error/")] == 1
    assert requests[("GET", "4xx", "<unmatched>")] == 20
    item_requests = sum(v for (_, _, route), v in requests.items() if route == "items/<int:pk>/")
    assert item_requests == 29
    assert not any(route.startswith("/") for _, _, route in requests), requests

    (workers,) = samples_named(families, "hurricane_workers")
    assert workers.value == 2
    probes = {
        s.labels["probe"]: s.value for s in samples_named(families, "hurricane_probe_healthy")
    }
    assert probes["startup"] == 1 and probes["liveness"] == 1
    (build,) = samples_named(families, "hurricane_build_info")
    assert build.labels["version"]
    assert samples_named(families, "hurricane_request_queue_wait_seconds_count")[0].value >= 54
    assert samples_named(families, "hurricane_event_loop_lag_seconds_count")  # timer is running
    durations = samples_named(families, "hurricane_request_duration_seconds_count")
    assert {s.labels["route"] for s in durations} >= {"json/", "items/<int:pk>/", "<unmatched>"}
    served.stop()


def test_metrics_path_is_configurable_and_can_be_turned_off(start_serve):
    served = start_serve(env={"HURRICANE_METRICS_PATH": "/internal/metrics"})
    assert served.probe_get("/internal/metrics")[0] == 200
    assert served.probe_get("/metrics")[0] == 404
    served.stop()

    served = start_serve("--no-metrics")
    assert served.probe_get("/metrics")[0] == 404
    served.stop()


def test_webhooks_arrive_signed_on_startup_and_on_sigterm(start_serve):
    with Receiver(secret=SECRET) as receiver:
        served = start_serve(
            env={
                "HURRICANE_WEBHOOK_URL": receiver.url,
                "HURRICANE_WEBHOOK_SECRET": SECRET,
                "HURRICANE_PROJECT_VERSION": "9.9.9",
                "POD_NAME": "testproject-abc",
            }
        )
        served.wait_probe("/ready", 200)
        up = receiver.wait_for(2)
        served.stop()
        events = receiver.wait_for(len(up) + 1)

    assert receiver.bad_signatures == 0  # every event verified by standardwebhooks
    kinds = [(e["type"], e["data"]["status"]) for e in events]
    assert ("hurricane.startup.changed", "healthy") in kinds[: len(up)]
    assert ("hurricane.readiness.changed", "healthy") in kinds[: len(up)]
    # The SIGTERM flipped readiness.
    assert kinds[-1] == ("hurricane.readiness.changed", "unhealthy"), kinds
    assert events[-1]["data"]["reason"] == "draining"
    sequences = [e["data"]["sequence"] for e in events]
    assert sequences == sorted(sequences)
    assert {e["data"]["pod"] for e in events} == {"testproject-abc"}
    assert {e["data"]["version"] for e in events} == {"9.9.9"}


def test_json_access_logs_parse_line_by_line_and_echo_request_ids(start_serve):
    served = start_serve(env={"HURRICANE_LOG_FORMAT": "json"})
    sent_ids = [f"e2e-{uuid.uuid4()}" for _ in range(5)]
    for request_id in sent_ids:
        status, headers, _ = served.get(
            "/items/3/", headers={"X-Request-ID": request_id, "traceparent": TRACEPARENT}
        )
        assert header(headers, "X-Request-ID") == request_id
    _, headers, body = served.get("/context/")
    generated_id = header(headers, "X-Request-ID")
    assert json.loads(body)["request_id"] == generated_id
    served.get("/error/", headers={"X-Request-ID": "failing-one", "traceparent": TRACEPARENT})
    served.probe_get("/ready")  # not logged: access_log_probes is off
    served.stop()

    lines = [json.loads(line) for line in served.output().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "hurricane_runtime.access"]
    assert [line["request_id"] for line in access[:5]] == sent_ids
    first = access[0]
    assert first["path"] == "/items/3/"
    assert first["route"] == "items/<int:pk>/"
    assert first["method"] == "GET"
    assert isinstance(first["duration_ms"], float) and first["queue_wait_ms"] >= 0
    assert first["remote_addr"] == "127.0.0.1"
    assert first["traceparent"] == TRACEPARENT
    assert access[5]["request_id"] == generated_id
    assert not any(line["path"] == "/ready" for line in access)
    errors = [line for line in lines if line["level"] == "ERROR"]
    (django_error,) = [line for line in errors if line["logger"] == "django.request"]
    assert django_error["request_id"] == "failing-one"
    assert django_error["traceparent"] == TRACEPARENT  # logged inside the request
    assert "this view always fails" in django_error["exception"]


def test_request_context_never_crosses_between_concurrent_requests(start_serve):
    served = start_serve("--workers", "4", env={"HURRICANE_LOG_FORMAT": "json"})

    def call(index):
        request_id = f"req-{index}"
        # Every other request carries no traceparent: it must not inherit one.
        headers = {"X-Request-ID": request_id}
        if index % 2 == 0:
            headers["traceparent"] = f"00-{index:032x}-{index:016x}-01"
        status, _, body = served.get(f"/context/?n={index}", headers=headers)
        assert status == 200
        return request_id, headers.get("traceparent"), json.loads(body)

    with ThreadPoolExecutor(max_workers=8) as clients:
        results = list(clients.map(call, range(200)))
    served.stop()

    for request_id, traceparent, seen_by_view in results:
        assert seen_by_view == {"request_id": request_id, "traceparent": traceparent}
    sent = {request_id: traceparent for request_id, traceparent, _ in results}
    access = [
        json.loads(line)
        for line in served.output().splitlines()
        if '"hurricane_runtime.access"' in line
    ]
    assert len(access) == 200
    for line in access:
        assert line["route"] == "context/"
        assert line["traceparent"] == sent[line["request_id"]]  # its own, or None


def test_access_lines_carry_the_requests_traceparent(start_serve):
    served = start_serve(env={"HURRICANE_LOG_FORMAT": "json"})
    served.get("/json/", headers={"X-Request-ID": "with-trace", "traceparent": TRACEPARENT})
    served.stop()
    (line,) = [json.loads(line) for line in served.output().splitlines() if '"with-trace"' in line]
    assert line["traceparent"] == TRACEPARENT


EVERY_WORKER_BLOCKED = {"workers_busy": 2, "requests_waiting": 3, "requests_in_flight": 5}


def test_busy_workers_and_backlog_are_visible_while_every_worker_is_blocked(start_serve):
    served = start_serve("--workers", "2")
    with ThreadPoolExecutor(max_workers=5) as clients:
        sleepers = [clients.submit(served.get, "/sleep/?seconds=2") for _ in range(5)]
        deadline = time.monotonic() + 1.5
        while True:  # the requests need a moment to arrive and the workers to pick them up
            families = scrape(served)
            seen = {
                name: samples_named(families, f"hurricane_{name}")[0].value
                for name in ("workers_busy", "requests_waiting", "requests_in_flight")
            }
            if seen == EVERY_WORKER_BLOCKED or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert seen == EVERY_WORKER_BLOCKED
        assert all(future.result()[0] == 200 for future in sleepers)

    families = scrape(served)
    assert samples_named(families, "hurricane_workers_busy")[0].value == 0
    # Three requests waited for a worker: about 2 s each for the first two, 4 s for the last.
    (wait_sum,) = samples_named(families, "hurricane_request_queue_wait_seconds_sum")
    assert wait_sum.value > 5
    (busy,) = samples_named(families, "hurricane_worker_busy_seconds_total")
    assert 9.5 < busy.value < 12
    served.stop()


def drain_seconds(output: str) -> float:
    """The drain timeout the server reported waiting out, if it did (else 0)."""
    match = re.search(r"after the ([0-9.]+)s drain timeout", output)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def silent_receiver_url():
    """Accepts connections and never answers: a hung webhook receiver."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def test_a_hung_webhook_receiver_does_not_slow_the_server(start_serve, silent_receiver_url):
    started = time.monotonic()
    served = start_serve(env={"HURRICANE_WEBHOOK_URL": silent_receiver_url})
    startup_seconds = time.monotonic() - started
    latencies = []
    for _ in range(20):
        begin = time.perf_counter()
        assert served.get("/json/")[0] == 200
        latencies.append(time.perf_counter() - begin)
    probe_begin = time.perf_counter()
    assert served.probe_get("/alive")[0] == 200
    assert time.perf_counter() - probe_begin < 0.5
    assert max(latencies) < 0.5, latencies
    assert startup_seconds < 30
    served.signal(signal.SIGTERM)
    stop_begin = time.monotonic()
    served.wait_exit(timeout=60)
    output = served.output()
    assert "webhook flush timed out" in output  # bounded: gave up after its 3 s
    flush_seconds = time.monotonic() - stop_begin - drain_seconds(output)
    assert flush_seconds < 6, output


def test_a_failed_startup_is_reported_before_the_process_exits(start_serve):
    with Receiver(secret=SECRET) as receiver:
        served = start_serve(
            "--command",
            "no_such_management_command",
            env={"HURRICANE_WEBHOOK_URL": receiver.url, "HURRICANE_WEBHOOK_SECRET": SECRET},
            wait=False,
        )
        assert served.wait_exit(timeout=60) != 0
        events = receiver.wait_for(1, timeout=5)
    failures = [
        e
        for e in events
        if (e["type"], e["data"]["status"]) == ("hurricane.startup.changed", "unhealthy")
    ]
    assert failures, events
    assert "no_such_management_command" in failures[-1]["data"]["reason"]
