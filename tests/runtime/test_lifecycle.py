"""Start-up commands, the migration wait, and the graceful (or not) way out."""

import concurrent.futures
import contextlib
import http.client
import json
import signal
import time

from conftest import TESTPROJECT, manage


def test_startup_commands_run_in_order_before_serving(start_serve, tmp_path):
    record = tmp_path / "record.txt"
    served = start_serve(
        "--command",
        "record first",
        "--command",
        "record 'second one'",
        env={"TESTPROJECT_RECORD_FILE": str(record), "HURRICANE_COMMAND": "record from-env"},
    )
    # The flags win over the environment: only they run, in the order given.
    assert record.read_text() == "first\nsecond one\n"
    assert served.get("/json/")[0] == 200


def test_startup_commands_from_the_environment(start_serve, tmp_path):
    record = tmp_path / "record.txt"
    start_serve(
        env={
            "TESTPROJECT_RECORD_FILE": str(record),
            "HURRICANE_COMMAND": "'record a' 'record b'",
        }
    )
    assert record.read_text() == "a\nb\n"


def test_failing_startup_command_exits_non_zero(start_serve, tmp_path):
    served = start_serve(
        "--command",
        "record --fail",
        env={"TESTPROJECT_RECORD_FILE": str(tmp_path / "r")},
        wait=False,
    )
    assert served.wait_exit(60) != 0
    assert "start-up failed" in served.output()


def test_check_migrations_waits_until_the_database_is_migrated(start_serve, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    served = start_serve("--check-migrations", database_url=database_url, wait=False)
    body = served.wait_probe("/startup", 503, timeout=60, reason="unapplied migrations")
    assert body["status"] == "unavailable"
    assert served.probe("/ready")[0] == 503
    result = manage("migrate", "--noinput", database_url=database_url)
    assert result.returncode == 0, result.stderr
    served.wait_probe("/startup", 200, timeout=60)
    assert served.get("/orm/")[0] == 200


def test_check_migrations_timeout_fails_startup(start_serve):
    served = start_serve(
        "--check-migrations", "--check-migrations-timeout", "1", migrate=False, wait=False
    )
    assert served.wait_exit(60) != 0
    assert "not migrated" in served.output()


def test_migrated_database_passes_the_check(start_serve):
    served = start_serve("--check-migrations")
    assert served.get("/orm/")[0] == 200


def test_start_up_objects_are_frozen_out_of_later_garbage_collections(start_serve):
    served = start_serve()
    status, _, body = served.get("/gc/")
    assert status == 200
    # Django, the runtime and the test project: tens of thousands of objects, all frozen once.
    assert json.loads(body)["frozen"] > 10_000


def test_sigterm_completes_in_flight_requests_then_exits_0(start_serve):
    served = start_serve("--workers", "4", "--drain-timeout", "30")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(served.get, "/sleep/?seconds=3", timeout=60) for _ in range(6)]
        time.sleep(1.0)
        served.signal(signal.SIGTERM)
        results = [future.result() for future in slow]
    for status, headers, body in results:
        assert status == 200 and b"slept" in body
        assert headers.get("Connection") == "close"
    assert served.wait_exit(60) == 0
    assert "all requests finished" in served.output()


def test_sigterm_turns_readiness_503_while_still_serving(start_serve):
    served = start_serve("--shutdown-delay", "4")
    served.wait_probe("/ready", 200, timeout=30)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("GET", "/json/")
    response = conn.getresponse()
    response.read()
    assert response.getheader("Connection") is None  # keep-alive before the signal
    served.signal(signal.SIGTERM)
    body = served.wait_probe("/ready", 503, timeout=3, reason="draining")
    assert body["status"] == "unavailable"
    # Still serving during the delay, telling keep-alive clients to leave.
    conn.request("GET", "/json/")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Connection") == "close"
    response.read()
    status, headers, _ = served.get("/json/")
    assert status == 200 and headers["Connection"] == "close"
    assert served.probe("/alive")[0] == 200
    assert served.wait_exit(60) == 0


def test_idle_keep_alive_connections_are_closed_on_shutdown(start_serve):
    served = start_serve()
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("GET", "/json/")
    conn.getresponse().read()
    started = time.monotonic()
    served.signal(signal.SIGTERM)
    assert served.wait_exit(60) == 0
    assert time.monotonic() - started < 20  # not waiting for the idle timeout


def test_second_signal_exits_at_once(start_serve):
    served = start_serve("--drain-timeout", "60")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(served.get, "/sleep/?seconds=30", timeout=60)
        time.sleep(1.0)
        served.signal(signal.SIGTERM)
        time.sleep(1.0)
        assert served.proc.poll() is None  # still draining the slow request
        started = time.monotonic()
        served.signal(signal.SIGINT)
        code = served.wait_exit(20)
        assert time.monotonic() - started < 10
        # The connection died with the process, as asked.
        with contextlib.suppress(OSError, http.client.HTTPException):
            slow.result()
    assert code != 0


def test_drain_timeout_gives_up_and_says_so(start_serve):
    served = start_serve("--drain-timeout", "1")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(served.get, "/sleep/?seconds=15", timeout=60)
        time.sleep(1.0)
        served.signal(signal.SIGTERM)
        code = served.wait_exit(30)
        with contextlib.suppress(OSError, http.client.HTTPException):
            slow.result()
    assert code == 1
    assert "drain timeout" in served.output()


def test_autoreload_restarts_on_code_change(start_serve):
    served = start_serve("--autoreload")
    assert served.output().count("serving on") == 1
    deadline = time.monotonic() + 60
    while served.output().count("serving on") < 2 and time.monotonic() < deadline:
        # Touch until seen: a change before the reloader's first scan would go unnoticed.
        (TESTPROJECT / "testproject" / "views.py").touch()
        time.sleep(1.0)
    assert served.output().count("serving on") == 2, served.output()
    served.wait_probe("/startup", 200, timeout=30)
    assert served.get("/json/")[0] == 200


def test_sigterm_during_startup_exits_without_serving(start_serve, tmp_path):
    served = start_serve(
        "--command",
        "record slow --sleep 30",
        env={"TESTPROJECT_RECORD_FILE": str(tmp_path / "record.txt")},
        wait=False,
    )
    served.wait_probe("/startup", 503, timeout=60, reason="record slow")
    started = time.monotonic()
    served.signal(signal.SIGTERM)
    assert served.wait_exit(30) == 0
    assert time.monotonic() - started < 20
    assert "stopped during start-up" in served.output()
