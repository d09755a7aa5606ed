"""``manage.py consume`` end to end: probes, faults, SIGTERM drain, ORM writes and bad input.

Each test runs the real command of the test project against the real RabbitMQ on its own
queue; network faults come from a TCP proxy in the test, broker-side closes from rabbitmqctl on
this test's connection only.
"""

import asyncio
import subprocess
import sys
import threading
import time
import uuid

import pytest
from amqp_helpers import (
    RABBITMQ_URL,
    close_connection_from_broker,
    delete_topology,
    drain_queue,
    publish_many,
    recorded,
)
from conftest import TESTPROJECT, base_env, free_port

from tests.tcp_proxy import TcpProxy


def wait_for(predicate, timeout: float, what: str, step: float = 0.05) -> float:
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(step)
    return time.monotonic() - began


class ProbeWatcher:
    """Polls one probe as fast as it answers on a thread, so short 503 windows are seen too."""

    def __init__(self, served, path: str):
        self.served, self.path = served, path
        self.answers: list[tuple[float, int, list]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)

    def _poll(self):
        while not self._stop.is_set():
            try:
                status, body = self.served.probe(self.path, timeout=2)
            except OSError:
                continue
            self.answers.append((time.monotonic(), status, body["reasons"]))
            time.sleep(0.005)

    def failures_since(self, moment: float) -> list[tuple[float, int, list]]:
        return [answer for answer in list(self.answers) if answer[0] >= moment and answer[1] != 200]


def test_starts_only_after_consume_ok_and_keeps_starting_while_the_broker_is_down(
    start_consume, amqp_queue
):
    with TcpProxy(5672) as proxy:
        proxy.cut()
        served = start_consume(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/", wait=False)
        body = served.wait_probe("/startup", 503, reason="waiting for the broker")
        assert served.probe("/ready")[0] == 503
        assert served.probe("/alive")[0] == 200  # starting is not dead
        wait_for(lambda: proxy.accepted >= 3, 20, "three connection attempts")
        assert served.proc.poll() is None, "a broker outage at start-up must not crash-loop"
        assert "retrying in" in " ".join(served.probe("/startup")[1]["reasons"]) or body
        proxy.restore()
        served.wait_probe("/startup", 200, timeout=20)
        served.wait_probe("/ready", 200, timeout=10)
        asyncio.run(publish_many(amqp_queue, [b"after the outage"]))
        wait_for(lambda: recorded(served) == ["handled after the outage"], 10, "handled")
        assert served.stop(30) == 0


def test_network_cut_turns_readiness_503_within_a_second_and_liveness_stays_200(
    start_consume, amqp_queue
):
    with TcpProxy(5672) as proxy:
        served = start_consume(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
        served.wait_probe("/ready", 200)
        proxy.cut()
        began = time.monotonic()
        served.wait_probe("/ready", 503, timeout=5)
        took = time.monotonic() - began
        liveness = set()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the consumer is down, the process is not
            liveness.add(served.probe("/alive")[0])
            time.sleep(0.05)
        proxy.restore()
        served.wait_probe("/ready", 200, timeout=20)
        liveness.add(served.probe("/alive")[0])
        assert served.stop(30) == 0
    assert took < 1.0, f"readiness took {took:.2f}s to notice the cut"
    assert liveness == {200}


def test_silent_partition_turns_readiness_503_and_recovers(start_consume, amqp_queue):
    with TcpProxy(5672) as proxy:
        served = start_consume(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
        served.wait_probe("/ready", 200)
        proxy.blackhole()
        began = time.monotonic()
        body = served.wait_probe("/ready", 503, timeout=5)
        took = time.monotonic() - began
        assert served.probe("/alive")[0] == 200
        proxy.restore()
        served.wait_probe("/ready", 200, timeout=30)
        assert served.stop(30) == 0
    assert "not verified" in " ".join(body["reasons"])
    assert took < 1.5  # 0.8 s without a verified consumer, plus a probe poll


def test_consumer_lost_on_the_broker_side_turns_unready_and_recovers(start_consume, amqp_queue):
    served = start_consume()
    served.wait_probe("/ready", 200)

    async def delete_queue():
        import aio_pika

        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(amqp_queue)

    with ProbeWatcher(served, "/ready") as watcher:
        # The queue is deleted: the broker cancels the consumer, which re-declares the queue
        # and consumes again, usually within a fraction of a second.
        deleted_at = time.monotonic()
        asyncio.run(delete_queue())
        wait_for(lambda: watcher.failures_since(deleted_at), 2, "readiness 503 after the delete")
        served.wait_probe("/ready", 200, timeout=20)
        # The connection is closed from the broker side (what a failover looks like).
        closed_at, close_returned = close_connection_from_broker(served.connection_name)
        wait_for(lambda: watcher.failures_since(closed_at), 2, "readiness 503 after the close")
        served.wait_probe("/ready", 200, timeout=20)
    deleted = watcher.failures_since(deleted_at)[0]
    closed = watcher.failures_since(closed_at)[0]
    assert "cancelled by the broker" in " ".join(deleted[2])
    assert deleted[0] - deleted_at < 1.0 and closed[0] - close_returned < 1.0
    assert served.probe("/alive")[0] == 200
    asyncio.run(publish_many(amqp_queue, [b"still consuming"]))
    wait_for(lambda: "handled still consuming" in recorded(served), 10, "handled")
    assert served.stop(30) == 0


def test_probes_answer_while_an_async_handler_blocks_the_loop_and_liveness_reports_it(
    start_consume, amqp_queue
):
    served = start_consume(
        "--loop-timeout",
        "1",
        handler="items.handlers.block_loop",
        env={"TESTPROJECT_HANDLER_SECONDS": "6"},
    )
    served.wait_probe("/ready", 200)
    asyncio.run(publish_many(amqp_queue, [b"stuck"]))
    wait_for(lambda: "started stuck" in recorded(served), 10, "the handler started")
    began = time.monotonic()
    served.wait_probe("/alive", 503, timeout=4, reason="the consumer's event loop stuck")
    noticed = time.monotonic() - began
    ready, body = served.probe("/ready", timeout=1)
    # Both answered while the loop is still blocked, from the probe port's own thread.
    assert "finished stuck" not in recorded(served)
    assert ready == 503 and "not verified" in " ".join(body["reasons"])
    assert noticed < 3, f"liveness took {noticed:.1f}s with a 1 s loop timeout"
    wait_for(lambda: "finished stuck" in recorded(served), 10, "the handler finished")
    served.wait_probe("/alive", 200, timeout=5)
    served.wait_probe("/ready", 200, timeout=10)
    assert served.stop(30) == 0


def test_sigterm_finishes_started_messages_and_hands_the_rest_back(start_consume, amqp_queue):
    served = start_consume(
        "--concurrency",
        "3",
        "--drain-timeout",
        "15",
        handler="items.handlers.slow",
        env={"TESTPROJECT_HANDLER_SECONDS": "2"},
    )
    bodies = [f"m-{i}" for i in range(10)]
    asyncio.run(publish_many(amqp_queue, bodies))
    wait_for(lambda: len(recorded(served)) >= 3, 20, "three handlers started")
    began = time.monotonic()
    served.signal()
    code = served.wait_exit(30)
    took = time.monotonic() - began
    events = recorded(served)
    started = {line.split()[1] for line in events if line.startswith("started")}
    finished = {line.split()[1] for line in events if line.startswith("finished")}
    remaining = {body.decode() for body in asyncio.run(drain_queue(amqp_queue))}
    assert code == 0, served.output()
    assert took < 15
    assert len(started) == 3 and started == finished  # every started message finished ...
    assert remaining == set(bodies) - finished  # ... and was acked; the rest went back


def test_handlers_past_the_drain_timeout_are_requeued_and_the_process_exits(
    start_consume, amqp_queue
):
    served = start_consume(
        "--concurrency",
        "2",
        "--drain-timeout",
        "1",
        handler="items.handlers.slow",
        env={"TESTPROJECT_HANDLER_SECONDS": "60"},
    )
    asyncio.run(publish_many(amqp_queue, [b"a", b"b", b"c"]))
    wait_for(lambda: len(recorded(served)) >= 2, 20, "two handlers started")
    began = time.monotonic()
    served.signal()
    code = served.wait_exit(30)
    took = time.monotonic() - began
    assert code == 0, served.output()  # what was left went back to the queue: a clean stop
    assert took < 5, f"exit took {took:.1f}s with a 1 s drain timeout"
    assert "requeued" in served.output()
    assert sorted(asyncio.run(drain_queue(amqp_queue))) == [b"a", b"b", b"c"]


def test_sync_handler_writes_through_the_orm_to_postgresql(start_consume, amqp_queue, postgres_url):
    import psycopg
    from conftest import manage

    database = f"hurricane_consume_{uuid.uuid4().hex[:10]}"
    server = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    with psycopg.connect(**server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        url = f"postgres://postgres@127.0.0.1:5432/{database}"
        migrated = manage("migrate", "--noinput", database_url=url)
        assert migrated.returncode == 0, migrated.stderr
        served = start_consume(handler="items.handlers.create_item", database_url=url)
        names = [f"item-{i}" for i in range(20)]
        asyncio.run(publish_many(amqp_queue, names))
        wait_for(lambda: len(recorded(served)) == 20, 20, "twenty items created")
        assert served.stop(30) == 0
        with psycopg.connect(**{**server, "dbname": database}) as connection:
            rows = connection.execute("SELECT name FROM items_item").fetchall()
        assert sorted(name for (name,) in rows) == sorted(names)
    finally:
        with psycopg.connect(**server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_metrics_of_the_consumer_are_on_the_probe_port(start_consume, amqp_queue):
    served = start_consume()
    asyncio.run(publish_many(amqp_queue, [b"one", b"two", b"fail"]))
    wait_for(lambda: len(recorded(served)) == 3, 10, "three handled")
    labels = f'broker="rabbitmq",handler="{amqp_queue}"'

    def metrics():
        return served.probe_get("/metrics")[1].decode()

    wait_for(lambda: f"hurricane_dead_lettered_messages_total{{{labels}}} 1.0" in metrics(), 5, "")
    text = metrics()
    assert f"hurricane_received_messages_total{{{labels}}} 3.0" in text
    assert f'hurricane_received_processed_messages_total{{{labels},status="acked"}} 2.0' in text
    assert f'hurricane_received_processed_messages_total{{{labels},status="error"}} 1.0' in text
    assert f"hurricane_consumers_active{{{labels}}} 1.0" in text
    assert "hurricane_probe_healthy" in text  # the same registry as every runtime metric
    assert served.stop(30) == 0


def run_consume(*args: str, database, env: dict | None = None, timeout: float = 60):
    process_env = base_env(f"sqlite:///{database}")
    process_env.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", "consume", *args],
        cwd=TESTPROJECT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["items.handlers.record", "--queue", "q", "--amqp-url", "http://user:pw@host/"],
            "invalid value 'http://user:***@host/' for option 'amqp_url' from flag --amqp-url",
        ),
        (
            ["items.handlers.record", "--queue", "q", "--amqp-url", "amqp://host:99999/"],
            "option 'amqp_url' from flag --amqp-url (bad port)",
        ),
        (
            ["items.nowhere.handle", "--queue", "q", "--amqp-url", RABBITMQ_URL],
            "cannot import handler 'items.nowhere.handle'",
        ),
        (
            ["items.handlers.not_callable", "--queue", "q", "--amqp-url", RABBITMQ_URL],
            "handler 'items.handlers.not_callable' is a int, not a function",
        ),
        (
            ["items.handlers.record", "--queue", "q", "--concurrency", "ten"],
            "invalid value 'ten' for option 'concurrency' from flag --concurrency",
        ),
        (["items.handlers.record", "--amqp-url", RABBITMQ_URL], "option 'queue' is required"),
        (["items.handlers.record", "--queue", "q"], "no broker URL"),
    ],
)
def test_bad_input_gets_one_clear_line_and_a_non_zero_exit(args, message, tmp_path):
    result = run_consume(*args, "--probe-port", str(free_port()), database=tmp_path / "db")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "pw" not in result.stderr  # a password never reaches the logs
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_conflicting_queue_arguments_fail_start_up_at_once(rabbitmq, amqp_queue, tmp_path):
    async def declare_classic():
        import aio_pika

        connection = await aio_pika.connect(rabbitmq)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(amqp_queue, durable=True)

    asyncio.run(declare_classic())
    began = time.monotonic()
    result = run_consume(
        "items.handlers.record",
        "--queue",
        amqp_queue,
        "--amqp-url",
        rabbitmq,
        database=tmp_path / "db",
        env={"HURRICANE_BIND": "127.0.0.1", "HURRICANE_PROBE_PORT": str(free_port())},
    )
    took = time.monotonic() - began
    asyncio.run(delete_topology(amqp_queue))
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "start-up failed" in line]
    assert result.returncode == 1
    assert took < 20  # no reconnect loop
    assert len(errors) == 1, output
    assert f"queue '{amqp_queue}' already exists with a different 'x-" in errors[0]
    assert "Traceback" not in output


def test_a_probe_port_in_use_fails_start_up_with_one_line(rabbitmq, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        result = run_consume(
            "items.handlers.record",
            "--queue",
            f"never-{uuid.uuid4().hex[:8]}",
            "--amqp-url",
            rabbitmq,
            database=tmp_path / "db",
            env={"HURRICANE_BIND": "127.0.0.1", "HURRICANE_PROBE_PORT": str(port)},
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert time.monotonic() - began < 20
    assert f"cannot listen on probe port {port}" in output
    assert "Traceback" not in output


def test_async_handler_publishes_with_confirms_from_inside_consume(start_consume, amqp_queue):
    import aio_pika

    replies = f"{amqp_queue}.replies"

    async def ask() -> bytes:
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                replies, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await channel.default_exchange.publish(
                aio_pika.Message(b"ping", reply_to=replies), routing_key=amqp_queue
            )
            async with queue.iterator(timeout=20) as messages:
                async for message in messages:
                    await message.ack()
                    body = message.body
                    break
            await queue.delete(if_unused=False, if_empty=False)
            return body

    served = start_consume(handler="items.handlers.echo")
    assert asyncio.run(ask()) == b"ping"
    assert served.stop(30) == 0
