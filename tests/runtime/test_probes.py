"""Startup, readiness and liveness on the probe port, in every state the issue lists."""

import concurrent.futures
import statistics
import time

from conftest import manage


def test_all_probes_ok_once_started(start_serve):
    served = start_serve()
    assert served.probe("/startup") == (200, {"status": "ok", "probe": "startup", "reasons": []})
    served.wait_probe("/ready", 200)
    assert served.probe("/ready")[1] == {"status": "ok", "probe": "readiness", "reasons": []}
    assert served.probe("/alive") == (200, {"status": "ok", "probe": "liveness", "reasons": []})


def test_startup_and_readiness_say_503_while_starting(start_serve, tmp_path):
    record = tmp_path / "record.txt"
    served = start_serve(
        "--command",
        "record slow --sleep 4",
        env={"TESTPROJECT_RECORD_FILE": str(record)},
        wait=False,
    )
    body = served.wait_probe("/startup", 503, timeout=60, reason="record slow")
    assert body["status"] == "unavailable" and body["probe"] == "startup"
    status, body = served.probe("/ready")
    assert status == 503 and "starting" in body["reasons"]
    assert served.probe("/alive")[0] == 200  # starting is not dead
    served.wait_probe("/startup", 200, timeout=60)
    served.wait_probe("/ready", 200, timeout=30)


def test_probe_paths_are_configurable(start_serve):
    served = start_serve("--readiness-probe", "/healthz/ready", "--liveness-probe", "/healthz")
    served.wait_probe("/healthz/ready", 200, timeout=30)
    assert served.probe("/healthz")[0] == 200
    assert served.probe_get("/ready")[0] == 404


def test_readiness_check_failure_and_recovery(start_serve, tmp_path):
    flag = tmp_path / "unready"
    served = start_serve(env={"TESTPROJECT_UNREADY_FILE": str(flag)})
    served.wait_probe("/ready", 200, timeout=30)
    flag.touch()
    body = served.wait_probe("/ready", 503, timeout=30)
    assert any("items.E001" in reason for reason in body["reasons"])
    assert served.probe("/alive")[0] == 200
    flag.unlink()
    served.wait_probe("/ready", 200, timeout=30)


def test_liveness_check_failure(start_serve, tmp_path):
    flag = tmp_path / "dead"
    served = start_serve(env={"TESTPROJECT_DEAD_FILE": str(flag)})
    assert served.probe("/alive")[0] == 200
    flag.touch()
    body = served.wait_probe("/alive", 503, timeout=30)
    assert any("items.E002" in reason for reason in body["reasons"])
    flag.unlink()
    served.wait_probe("/alive", 200, timeout=30)


def test_probes_stay_fast_while_every_worker_is_blocked(start_serve):
    served = start_serve("--workers", "2", "--backlog", "100")
    served.wait_probe("/ready", 200, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(served.get, "/sleep/?seconds=4", timeout=60) for _ in range(4)]
        time.sleep(1.0)  # let the workers pick the requests up
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            assert served.probe("/alive")[0] == 200
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
            served.probe("/ready")
            timings.append(time.perf_counter() - started)
        assert all(future.result()[0] == 200 for future in slow)
    # Loose bound for a loaded CI machine; the benchmark measures the real figures.
    assert statistics.median(timings) < 0.2, timings
    assert max(timings) < 1.0, timings


def test_readiness_says_503_while_the_backlog_is_saturated(start_serve):
    served = start_serve("--workers", "1", "--backlog", "2")
    served.wait_probe("/ready", 200, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(served.get, "/sleep/?seconds=3", timeout=60) for _ in range(4)]
        body = served.wait_probe("/ready", 503, timeout=10, reason="backlog saturated")
        assert served.probe("/alive")[0] == 200
        assert all(future.result()[0] == 200 for future in slow)
    assert body["status"] == "unavailable"
    served.wait_probe("/ready", 200, timeout=30)


def test_unknown_probe_path_is_404_and_methods_are_limited(start_serve):
    served = start_serve()
    assert served.probe_get("/nope")[0] == 404
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", served.probe_port, timeout=10)
    conn.request("POST", "/ready", body=b"x")
    assert conn.getresponse().status == 405


def test_no_probe_closes_the_probe_port(start_serve):
    import pytest

    served = start_serve("--no-probe", wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if served.get("/json/", timeout=5)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    assert served.get("/json/")[0] == 200
    with pytest.raises(OSError):
        served.probe("/alive", timeout=2)


# -- the database --------------------------------------------------------------------------


def test_readiness_follows_the_database_and_liveness_ignores_it(start_serve, postgres_proxy):
    served = start_serve("--check-timeout", "1", database_url=postgres_proxy.url)
    served.wait_probe("/ready", 200, timeout=30)
    postgres_proxy.cut()
    body = served.wait_probe("/ready", 503, timeout=30, reason="database")
    assert any("hurricane_runtime.E00" in reason for reason in body["reasons"])
    # A database outage must never restart the pod.
    for _ in range(10):
        assert served.probe("/alive")[0] == 200
        time.sleep(0.1)
    postgres_proxy.restore()
    served.wait_probe("/ready", 200, timeout=30)


def test_probes_answer_quickly_while_the_database_is_down(start_serve, postgres_proxy):
    served = start_serve("--check-timeout", "1", database_url=postgres_proxy.url)
    served.wait_probe("/ready", 200, timeout=30)
    postgres_proxy.cut()
    served.wait_probe("/ready", 503, timeout=30)
    for path in ("/ready", "/alive", "/startup"):
        started = time.perf_counter()
        served.probe(path)
        assert time.perf_counter() - started < 1.0


def test_manage_check_works_while_the_database_is_down(postgres_proxy):
    postgres_proxy.cut()
    result = manage("check", database_url=postgres_proxy.url, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database" not in result.stderr
