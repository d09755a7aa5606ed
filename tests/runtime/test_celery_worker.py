"""A real ``celery worker`` with ``hurricane_runtime.celery.install(app)``: honest probes.

Workers run as subprocesses of the test project against the machine's RabbitMQ and Redis; the
network is cut with a ``TcpProxy`` in the test, never by stopping a shared service.
"""

import base64
import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from celery_helpers import client, poll, with_port
from receiver import Receiver

from tests.tcp_proxy import TcpProxy


def metric(body: bytes, name: str, task: str | None = None) -> float:
    """Value of one sample of the metrics page (0 when absent)."""
    prefix = f'{name}{{task="{task}"}} ' if task else f"{name} "
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def wait_metric(worker, name, value, task=None, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        body = worker.probe_get("/metrics")[1]
        if metric(body, name, task) == value:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{{{task}}} is not {value}:\n{body.decode()}")
        time.sleep(0.2)


def test_worker_is_started_ready_and_alive_once_it_consumes(start_celery, broker_url):
    worker = start_celery("worker", broker_url=broker_url)
    assert worker.probe("/startup") == (200, {"status": "ok", "probe": "startup", "reasons": []})
    assert worker.probe("/ready")[0] == 200
    assert worker.probe("/alive")[0] == 200
    assert worker.ping().returncode == 0


def listening_inode(port: int) -> str:
    """Inode of the socket listening on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if local == f"0100007F:{port:04X}" and state == "0A":
            return inode
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def holders(process_group: int, inode: str) -> set[int]:
    """Processes of ``process_group`` that hold the socket ``inode`` open."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            pid = int(stat.parent.name)
            if int(stat.read_text().rpartition(")")[2].split()[2]) != process_group:
                continue
            for fd in (stat.parent / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        found.add(pid)
    return found


def nice_values(process_group: int) -> dict[int, int]:
    """Niceness of every process of ``process_group``."""
    values = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == process_group:
                values[int(stat.parent.name)] = int(fields[16])
    return values


def test_only_the_parent_holds_the_probe_port_and_its_children_yield_the_cpu(
    start_celery, rabbitmq_url
):
    # Every child exits after one task and is forked again from the parent, whose probe
    # thread is running by then.
    worker = start_celery(
        "worker", "--concurrency", "2", "--max-tasks-per-child", "1", broker_url=rabbitmq_url
    )
    app = client(rabbitmq_url, worker.queue)
    for _ in range(4):
        app.send_task("items.tasks.add", args=(1, 2))
    wait_metric(worker, "hurricane_celery_tasks_succeeded_total", 4, "items.tasks.add")
    assert "ForkPoolWorker-3" in worker.output()  # a child forked after the port opened
    time.sleep(0.5)  # and the replacements of the last two children
    assert holders(worker.proc.pid, listening_inode(worker.probe_port)) == {worker.proc.pid}
    assert worker.probe("/alive")[0] == 200
    # The children yield the CPU to the parent (pool_niceness, 10 by default).
    niceness = nice_values(worker.proc.pid)
    assert niceness.pop(worker.proc.pid) == 0
    assert set(niceness.values()) == {10}, niceness


def test_task_metrics_count_each_outcome_by_task_name(start_celery, rabbitmq_url):
    worker = start_celery("worker", broker_url=rabbitmq_url)
    app = client(rabbitmq_url, worker.queue)
    app.send_task("items.tasks.add", args=(1, 2))
    app.send_task("items.tasks.fail")
    app.send_task("items.tasks.retry_once")
    wait_metric(worker, "hurricane_celery_tasks_succeeded_total", 1, "items.tasks.add")
    wait_metric(worker, "hurricane_celery_tasks_failed_total", 1, "items.tasks.fail")
    wait_metric(worker, "hurricane_celery_tasks_retried_total", 1, "items.tasks.retry_once")
    body = wait_metric(
        worker, "hurricane_celery_tasks_succeeded_total", 1, "items.tasks.retry_once"
    )
    assert metric(body, "hurricane_celery_tasks_received_total", "items.tasks.retry_once") == 2
    assert metric(body, "hurricane_celery_tasks_started_total", "items.tasks.add") == 1
    assert metric(body, "hurricane_celery_tasks_failed_total", "items.tasks.add") == 0
    assert metric(body, "hurricane_celery_task_runtime_seconds_count", "items.tasks.add") == 1
    assert metric(body, "hurricane_celery_tasks_active") == 0
    assert metric(body, "hurricane_celery_worker_consuming") == 1


def test_tagged_checks_also_decide_a_workers_readiness_and_liveness(
    start_celery, rabbitmq_url, tmp_path
):
    unready, dead = tmp_path / "unready", tmp_path / "dead"
    worker = start_celery(
        "worker",
        broker_url=rabbitmq_url,
        env={"TESTPROJECT_UNREADY_FILE": str(unready), "TESTPROJECT_DEAD_FILE": str(dead)},
    )
    worker.wait_probe("/ready", 200, timeout=10)
    unready.touch()
    body = worker.wait_probe("/ready", 503, timeout=10)
    assert any("items.E001" in reason for reason in body["reasons"])
    assert worker.probe("/alive")[0] == 200
    unready.unlink()
    worker.wait_probe("/ready", 200, timeout=10)
    dead.touch()
    body = worker.wait_probe("/alive", 503, timeout=10)
    assert any("items.E002" in reason for reason in body["reasons"])


def test_state_changes_reach_the_webhook_and_the_last_one_is_sent_before_exit(
    start_celery, rabbitmq_url
):
    secret = "whsec_" + base64.b64encode(b"celery-worker-webhook-secret-32b").decode()
    with Receiver(secret=secret) as receiver:
        worker = start_celery(
            "worker",
            broker_url=rabbitmq_url,
            env={
                "HURRICANE_WEBHOOK_URL": receiver.url,
                "HURRICANE_WEBHOOK_SECRET": secret,
                "POD_NAME": "worker-abc",
            },
        )
        up = receiver.wait_for(2)
        assert worker.stop(timeout=30) == 0
        events = receiver.wait_for(len(up) + 1)
    assert receiver.bad_signatures == 0
    kinds = [(event["type"], event["data"]["status"]) for event in events]
    assert {
        ("hurricane.startup.changed", "healthy"),
        ("hurricane.readiness.changed", "healthy"),
    } <= set(kinds[: len(up)])
    assert kinds[-1] == ("hurricane.readiness.changed", "unhealthy"), kinds
    assert "draining" in events[-1]["data"]["reason"]
    assert {event["data"]["pod"] for event in events} == {"worker-abc"}


@pytest.mark.slow
def test_broker_outage_turns_readiness_503_while_liveness_stays_200(
    start_celery, rabbitmq_url, redis_url
):
    # Both broker answers at once: the outage is the long wait, and they can share it.
    outage = 60.0
    with contextlib.ExitStack() as stack:
        workers = []
        for url in (rabbitmq_url, redis_url):
            proxy = stack.enter_context(TcpProxy(urlsplit(url).port))
            worker = start_celery(
                "worker",
                broker_url=with_port(url, proxy.port),
                env={"HURRICANE_WORKER_LOOP_TIMEOUT": "10"},
            )
            worker.wait_probe("/ready", 200, timeout=10)
            workers.append((proxy, worker))

        for proxy, _ in workers:
            proxy.cut()
        cut_at = time.monotonic()
        for _, worker in workers:
            body = worker.wait_probe("/ready", 503, timeout=10 - (time.monotonic() - cut_at))
            assert any("not consuming" in reason for reason in body["reasons"]), body

        def liveness():
            return tuple(worker.probe("/alive")[0] for _, worker in workers)

        answers = poll(liveness, outage - (time.monotonic() - cut_at))
        assert set(answers) == {(200, 200)}, answers
        for _, worker in workers:
            assert worker.probe("/ready")[0] == 503

        for proxy, _ in workers:
            proxy.restore()
        restored_at = time.monotonic()
        for _, worker in workers:
            worker.wait_probe("/ready", 200, timeout=15 - (time.monotonic() - restored_at))
            assert worker.probe("/alive")[0] == 200
        # The heartbeat survived the reconnect: the loop beats it again, once a second.
        time.sleep(2.5)
        for _, worker in workers:
            body = worker.probe_get("/metrics")[1]
            assert metric(body, "hurricane_celery_worker_loop_heartbeat_age_seconds") < 2


@pytest.mark.slow
def test_long_tasks_keep_liveness_200_where_inspect_ping_gets_no_answer(start_celery, rabbitmq_url):
    # prefork with one child, and the solo pool (the task runs on the worker's own loop,
    # which is where `celery inspect ping` gets no answer). A 5 s loop limit, so that 30 s
    # of task would be six times too long for a loop that is not beating.
    quick = {"HURRICANE_WORKER_LOOP_TIMEOUT": "5"}
    prefork = start_celery("worker", broker_url=rabbitmq_url, env=quick)
    solo = start_celery("worker", "--pool", "solo", broker_url=rabbitmq_url, env=quick)
    for worker in (prefork, solo):
        client(rabbitmq_url, worker.queue).send_task("items.tasks.sleep_for", args=(30,))
    for worker in (prefork, solo):
        wait_metric(worker, "hurricane_celery_tasks_active", 1)
    busy_since = time.monotonic()

    ping = solo.ping(timeout=3)
    assert ping.returncode != 0, ping.stdout + ping.stderr
    assert "No nodes replied" in ping.stdout + ping.stderr

    def liveness():
        return prefork.probe("/alive")[0], solo.probe("/alive")[0]

    answers = poll(liveness, 28 - (time.monotonic() - busy_since), every=1.0)
    assert set(answers) == {(200, 200)}, answers

    def heartbeat_age(worker):
        body = worker.probe_get("/metrics")[1]
        return metric(body, "hurricane_celery_worker_loop_heartbeat_age_seconds")

    assert heartbeat_age(prefork) < 2  # its loop kept running beside the busy child
    assert heartbeat_age(solo) > 20  # its loop ran the task: busy, not stuck
    for worker in (prefork, solo):
        wait_metric(worker, "hurricane_celery_tasks_succeeded_total", 1, "items.tasks.sleep_for")
        assert worker.probe("/alive")[0] == 200
    assert solo.ping().returncode == 0


def test_a_stuck_worker_loop_turns_liveness_503(start_celery, rabbitmq_url):
    worker = start_celery(
        "worker",
        broker_url=rabbitmq_url,
        env={"HURRICANE_WORKER_LOOP_TIMEOUT": "3", "TESTPROJECT_WEDGE_SECONDS": "7"},
    )
    assert worker.probe("/alive")[0] == 200
    worker.signal(signal.SIGUSR2)  # the test project blocks the main thread for 7 s
    body = worker.wait_probe("/alive", 503, timeout=6)
    assert "worker event loop stuck" in body["reasons"][0], body
    worker.wait_probe("/alive", 200, timeout=15)


def test_sigterm_lets_a_late_ack_task_finish_exactly_once(start_celery, rabbitmq_url, postgres_url):
    import psycopg

    table = f"celery_runs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, phase text NOT NULL)")
        try:
            # As docs/celery.md recommends: SIGTERM starts Celery's soft shutdown (6 s here).
            first = start_celery(
                "worker",
                broker_url=rabbitmq_url,
                database_url=postgres_url,
                env={"REMAP_SIGTERM": "SIGQUIT", "TESTPROJECT_SOFT_SHUTDOWN": "6"},
            )
            client(rabbitmq_url, first.queue).send_task("items.tasks.record_run", args=(table, 3))
            deadline = time.monotonic() + 20
            while not db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                assert time.monotonic() < deadline, "the task did not start\n" + first.output()
                time.sleep(0.1)

            first.signal(signal.SIGTERM)
            assert first.wait_probe("/ready", 503, timeout=5)["reasons"]
            assert first.probe("/alive")[0] == 200  # the loop waits on purpose now
            assert first.wait_exit(timeout=30) == 0, first.output()

            # A second worker on the same queue would get the message if it was not acked.
            second = start_celery(
                "worker", broker_url=rabbitmq_url, queue=first.queue, database_url=postgres_url
            )
            time.sleep(3)
            body = second.probe_get("/metrics")[1]
            received = metric(
                body, "hurricane_celery_tasks_received_total", "items.tasks.record_run"
            )
            assert received == 0
            phases = db.execute(f"SELECT phase FROM {table} ORDER BY id").fetchall()
            assert phases == [("started",), ("finished",)], phases
        finally:
            db.execute(f"DROP TABLE IF EXISTS {table}")


def test_unreachable_broker_at_start_up_is_reported_by_the_startup_probe(
    start_celery, rabbitmq_url
):
    with TcpProxy(5672) as proxy:
        proxy.cut()
        worker = start_celery(
            "worker",
            broker_url=with_port(rabbitmq_url, proxy.port),
            env={"HURRICANE_WORKER_LOOP_TIMEOUT": "2"},
            wait=False,
        )
        body = worker.wait_probe("/startup", 503, timeout=30, reason="broker unreachable")
        assert "next attempt in" in body["reasons"][0], body
        # Longer than the loop timeout: the reconnect loop beats the heartbeat.
        time.sleep(4)
        assert worker.probe("/alive")[0] == 200
        assert worker.probe("/ready")[0] == 503
        proxy.restore()
        worker.wait_probe("/startup", 200, timeout=20)
        worker.wait_probe("/ready", 200, timeout=5)


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"TESTPROJECT_BROKER_URL": "amqq://guest:guest@127.0.0.1:5672//"},
            "unknown broker URL scheme 'amqq' in broker_url",
        ),
        (
            {"HURRICANE_WORKER_LOOP_TIMEOUT": "soon"},
            "invalid value 'soon' for option 'worker_loop_timeout' from environment variable "
            "HURRICANE_WORKER_LOOP_TIMEOUT",
        ),
        (
            {"HURRICANE_RECONNECT_INTERVAL_MAX": "0"},
            "invalid value '0' for option 'reconnect_interval_max'",
        ),
    ],
)
@pytest.mark.parametrize("kind", ["worker", "beat"])
def test_bad_input_stops_with_one_clear_message(start_celery, rabbitmq_url, kind, env, message):
    process = start_celery(kind, broker_url=rabbitmq_url, env=env, wait=False)
    assert process.wait_exit(timeout=60) == 1
    output = process.output()
    assert output.count(message) == 1, output
    assert f"hurricane_runtime.celery: {message}" in output, output
    assert "Traceback" not in output, output
