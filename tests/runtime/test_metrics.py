"""Prometheus metrics, fed with RequestRecords and RuntimeState, parsed with prometheus-client."""

import platform
import random
import string
import time
from types import SimpleNamespace

import django
import prometheus_client
import pytest
from observability_helpers import isolated_logging, observability_config  # noqa: F401
from prometheus_client.parser import text_string_to_metric_families
from tornado.ioloop import IOLoop

from hurricane_runtime import __version__
from hurricane_runtime.events import UNMATCHED_ROUTE, Observers, RequestRecord
from hurricane_runtime.metrics import MAX_ROUTES, OVERFLOW_ROUTE, Metrics
from hurricane_runtime.observability import install
from hurricane_runtime.state import RuntimeState


def record(method="GET", route="api/items/", path=None, status=200, duration=0.01, wait=0.001):
    return RequestRecord(
        method=method,
        route=route,
        path=path or "/" + route,
        status=status,
        duration=duration,
        queue_wait=wait,
        request_id="r-1",
        remote_addr="127.0.0.1",
        response_bytes=42,
    )


def scrape(metrics: Metrics) -> dict[str, list]:
    """Parse the endpoint's body the way Prometheus would: family name -> samples."""
    status, content_type, body = metrics.render()
    assert status == 200
    assert content_type == prometheus_client.CONTENT_TYPE_LATEST
    return {family.name: family.samples for family in text_string_to_metric_families(body.decode())}


def value(samples, name, **labels) -> float:
    matches = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, f"{name}{labels}: {matches}"
    return matches[0]


@pytest.fixture
def state():
    return RuntimeState(workers=8, backlog_limit=16)


@pytest.fixture
def metrics(state):
    return Metrics(state, project_version="2.0.1")


def test_requests_are_counted_by_method_status_class_and_route(metrics):
    for _ in range(3):
        metrics.observe_request(record("GET", "api/items/<int:pk>/", path="/api/items/7/"))
    metrics.observe_request(record("POST", "api/items/", status=201))
    metrics.observe_request(record("GET", "api/items/<int:pk>/", path="/api/items/9/", status=404))
    metrics.observe_request(record("GET", UNMATCHED_ROUTE, path="/nope", status=404))

    families = scrape(metrics)
    requests = families["hurricane_requests"]
    total = "hurricane_requests_total"
    assert value(requests, total, method="GET", status="2xx", route="api/items/<int:pk>/") == 3
    assert value(requests, total, method="POST", status="2xx", route="api/items/") == 1
    assert value(requests, total, method="GET", status="4xx", route="api/items/<int:pk>/") == 1
    assert value(requests, total, method="GET", status="4xx", route=UNMATCHED_ROUTE) == 1
    # Raw paths never become label values.
    labels = {v for s in requests for v in s.labels.values()}
    assert not any(v.startswith("/") for v in labels)


def test_durations_waits_and_worker_busy_time_are_recorded(metrics):
    metrics.observe_request(record(duration=0.2, wait=0.05))
    metrics.observe_request(record(duration=0.03, wait=0.0))
    families = scrape(metrics)

    duration = families["hurricane_request_duration_seconds"]
    count = "hurricane_request_duration_seconds_count"
    assert value(duration, count, route="api/items/", method="GET") == 2
    bucket = "hurricane_request_duration_seconds_bucket"
    assert value(duration, bucket, route="api/items/", method="GET", le="0.05") == 1
    assert value(duration, bucket, route="api/items/", method="GET", le="0.25") == 2

    wait = families["hurricane_request_queue_wait_seconds"]
    assert value(wait, "hurricane_request_queue_wait_seconds_count") == 2
    assert value(wait, "hurricane_request_queue_wait_seconds_sum") == pytest.approx(0.05)
    busy = families["hurricane_worker_busy_seconds"]
    assert value(busy, "hurricane_worker_busy_seconds_total") == pytest.approx(0.18)


def test_ten_thousand_distinct_paths_and_hostile_methods_stay_bounded(metrics):
    rng = random.Random(3)
    statuses = (200, 201, 204, 301, 302, 400, 403, 404, 405, 500, 502, 503)
    for index in range(10_000):
        method = rng.choice(
            ("GET", "POST", "get", "PROPFIND", "".join(rng.sample(string.ascii_uppercase, 6)))
        )
        metrics.observe_request(
            record(
                method,
                UNMATCHED_ROUTE,
                path=f"/random/{index}/{rng.random()}",
                status=rng.choice(statuses),
            )
        )
    families = scrape(metrics)
    series = [s for s in families["hurricane_requests"] if s.name == "hurricane_requests_total"]
    # 3 method values (GET, POST, other) x 4 status classes x 1 route.
    assert len(series) <= 3 * 4
    assert {s.labels["method"] for s in series} == {"GET", "POST", "other"}
    assert sum(s.value for s in series) == 10_000
    duration_series = {
        tuple(sorted(s.labels.items()))
        for s in families["hurricane_request_duration_seconds"]
        if s.name.endswith("_count")
    }
    assert len(duration_series) == 3
    # The bind cache does not grow with hostile input either.
    assert len(metrics._children) <= 2 * 4 * 1


def test_routes_are_capped_even_if_a_project_generated_patterns_without_end(metrics):
    for index in range(MAX_ROUTES + 500):
        metrics.observe_request(record(route=f"generated/{index}/"))
    routes = {
        s.labels["route"]
        for s in scrape(metrics)["hurricane_requests"]
        if s.name == "hurricane_requests_total"
    }
    assert len(routes) == MAX_ROUTES  # MAX_ROUTES - 1 generated + <other> (UNMATCHED is kept)
    assert OVERFLOW_ROUTE in routes


def test_state_gauges_are_read_at_scrape_time(metrics, state):
    families = scrape(metrics)
    assert value(families["hurricane_requests_in_flight"], "hurricane_requests_in_flight") == 0
    state.in_flight = 11
    state.pool = SimpleNamespace(waiting=3, busy=8)  # the server's worker pool counts these
    state.draining = True
    state.probe_healthy.update(startup=True, readiness=False, liveness=True)
    families = scrape(metrics)
    assert value(families["hurricane_requests_in_flight"], "hurricane_requests_in_flight") == 11
    assert value(families["hurricane_requests_waiting"], "hurricane_requests_waiting") == 3
    assert value(families["hurricane_workers_busy"], "hurricane_workers_busy") == 8
    assert value(families["hurricane_workers"], "hurricane_workers") == 8
    assert value(families["hurricane_backlog_limit"], "hurricane_backlog_limit") == 16
    assert value(families["hurricane_draining"], "hurricane_draining") == 1
    probes = families["hurricane_probe_healthy"]
    assert value(probes, "hurricane_probe_healthy", probe="startup") == 1
    assert value(probes, "hurricane_probe_healthy", probe="readiness") == 0
    assert value(probes, "hurricane_probe_healthy", probe="liveness") == 1
    start = families["hurricane_process_start_time_seconds"]
    assert value(start, "hurricane_process_start_time_seconds") == pytest.approx(state.started_at)


def test_build_info_names_every_version(metrics):
    build = scrape(metrics)["hurricane_build_info"]
    (sample,) = build
    assert sample.name == "hurricane_build_info" and sample.value == 1
    assert sample.labels == {
        "version": __version__,
        "django_version": django.get_version(),
        "python_version": platform.python_version(),
        "project_version": "2.0.1",
    }


def test_every_runtime_metric_is_in_the_hurricane_namespace(metrics):
    metrics.observe_request(record())
    ours = [name for name in scrape(metrics) if not name.startswith(("process_", "python_"))]
    assert ours and all(name.startswith("hurricane_") for name in ours), ours


def test_project_metrics_on_the_default_registry_are_served_too(metrics):
    orders = prometheus_client.Counter("shop_orders", "Orders placed.")
    try:
        orders.inc(2)
        families = scrape(metrics)
        assert value(families["shop_orders"], "shop_orders_total") == 2
    finally:
        prometheus_client.REGISTRY.unregister(orders)


def test_event_loop_lag_is_measured_on_the_running_loop(metrics):
    loop = IOLoop(make_current=False)

    def block_the_loop():
        time.sleep(1.0)  # what a blocking call in async code would do

    def run():
        metrics.start_loop_lag(loop)
        loop.call_later(0.6, block_the_loop)  # spans the ticks at 1.0 s and 1.5 s
        loop.call_later(2.3, loop.stop)

    loop.add_callback(run)
    loop.start()
    metrics.stop_loop_lag()
    loop.close()

    families = scrape(metrics)
    lag = families["hurricane_event_loop_lag_seconds"]
    assert value(lag, "hurricane_event_loop_lag_seconds_count") >= 2
    assert value(lag, "hurricane_event_loop_lag_seconds_sum") >= 0.4
    assert value(lag, "hurricane_event_loop_lag_seconds_bucket", le="0.1") >= 1  # idle ticks


@pytest.mark.usefixtures("isolated_logging")
def test_install_serves_metrics_on_the_configured_probe_path(state):
    observers = Observers()
    install(observability_config(metrics_path="/internal/metrics"), state, observers)
    observers.notify(observers.request_finished, record())
    status, content_type, body = observers.probe_routes["/internal/metrics"]()
    assert status == 200 and content_type.startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "hurricane_requests" in families


@pytest.mark.usefixtures("isolated_logging")
def test_no_metrics_adds_no_route_and_no_request_listener(state):
    observers = Observers()
    installed = install(observability_config(no_metrics=True), state, observers)
    assert observers.probe_routes == {}
    assert installed.metrics is None
    assert observers.server_started == []
