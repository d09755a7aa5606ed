"""The default bake serves: probes, the example endpoint, the readiness check, a clean SIGTERM."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import bake, free_port, get_json, http_get, wait_for_status


def manage(project, *args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
def served(tmp_path):
    """The default bake, unmigrated, served on free loopback ports (set through the same
    HURRICANE_ environment variables the Kubernetes manifests use)."""
    project = bake(tmp_path)
    app_port, probe_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": "",  # local settings: SQLite in the project folder
        "HURRICANE_PORT": str(app_port),
        "HURRICANE_PROBE_PORT": str(probe_port),
        "HURRICANE_SHUTDOWN_DELAY": "2",
        "HURRICANE_DRAIN_TIMEOUT": "3",
    }
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield (
            project,
            env,
            process,
            f"http://127.0.0.1:{app_port}",
            f"http://127.0.0.1:{probe_port}",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.seek(0)
        print(log.read())
        log.close()


def test_default_bake_boots_answers_and_stops_cleanly(served):
    project, env, process, app, probes = served

    wait_for_status(f"{probes}/startup", 200, timeout=60, process=process)
    wait_for_status(f"{probes}/alive", 200, process=process)

    # The items readiness check keeps traffic away until the migrations ran.
    status, _, body = http_get(f"{probes}/ready")
    assert status == 503
    assert "items.E001" in json.loads(body)["reasons"][0]

    manage(project, "migrate", "--noinput", env=env)
    manage(
        project,
        "shell",
        "-c",
        "from hurricane_service.items.models import Item; Item.objects.create(name='booted')",
        env=env,
    )
    wait_for_status(f"{probes}/ready", 200, timeout=15, process=process)

    status, payload = get_json(f"{app}/api/items/")
    assert status == 200
    assert [item["name"] for item in payload["items"]] == ["booted"]

    status, _, metrics = http_get(f"{probes}/metrics")
    assert status == 200
    assert b"hurricane_requests_total" in metrics

    process.send_signal(signal.SIGTERM)
    # Readiness turns 503 at once so load balancers stop sending traffic, then the process
    # drains and exits 0.
    wait_for_status(f"{probes}/ready", 503, timeout=5, process=None)
    assert process.wait(timeout=20) == 0
