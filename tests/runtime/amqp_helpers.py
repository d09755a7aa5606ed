"""Shared pieces of the consume tests: the real RabbitMQ, unique names, broker-side actions.

Every test gets its own queue (``amqp_queue``) and deletes what it declared (the queue, its
``.dlq`` and its ``.dlx``). Broker-side faults use ``rabbitmqctl`` on this test's own
connection only, found by the connection name the consumer gives itself.
"""

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/"


def rabbitmq_reachable() -> str | None:
    """None when RabbitMQ answers on its port, else why not."""
    try:
        import aio_pika  # noqa: F401
    except ImportError:
        return "aio-pika is not installed (the 'amqp' extra)"
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=2):
            return None
    except OSError as error:
        return f"RabbitMQ on {RABBITMQ_HOST}:{RABBITMQ_PORT} is not reachable: {error}"


@pytest.fixture
def rabbitmq():
    """The broker URL; skips the test when RabbitMQ is not running here."""
    why = rabbitmq_reachable()
    if why:
        pytest.skip(why)
    return RABBITMQ_URL


@pytest.fixture
def amqp_queue(rabbitmq):
    """A unique queue name; the queue, its dead-letter queue and exchange are deleted after."""
    name = f"hurricane-consume-test-{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(delete_topology(name))


async def delete_topology(queue: str, exchanges: tuple[str, ...] = ()) -> None:
    import aio_pika

    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        for name in (queue, f"{queue}.dlq"):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        for name in (f"{queue}.dlx", *exchanges):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)


async def publish_many(queue: str, bodies, url: str = RABBITMQ_URL) -> None:
    """Publish persistent messages with publisher confirms (they are on the broker after)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        body if isinstance(body, bytes) else str(body).encode(),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=queue,
                )
                for body in bodies
            )
        )


async def drain_queue(queue: str, url: str = RABBITMQ_URL) -> list[bytes]:
    """Get (and ack) every message waiting in ``queue``."""
    import aio_pika

    connection = await aio_pika.connect(url)
    bodies = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while (message := await declared.get(fail=False)) is not None:
            bodies.append(message.body)
            await message.ack()
    return bodies


def rabbitmqctl(*args: str) -> str:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed here")
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def close_connection_from_broker(connection_name_part: str) -> tuple[float, float]:
    """Close (broker side) the one connection whose name contains ``connection_name_part``.

    Returns the monotonic times right before and right after ``rabbitmqctl close_connection``
    (the command itself takes a few hundred milliseconds to start).
    """
    listing = rabbitmqctl("list_connections", "--no-table-headers", "pid", "client_properties")
    pids = []
    for line in listing.splitlines():
        pid, _, properties = line.partition("\t")
        match = re.search(r'\{"connection_name","([^"]*)"\}', properties)
        if match and connection_name_part in match.group(1):
            pids.append(pid)
    assert len(pids) == 1, f"expected one connection named {connection_name_part!r}: {listing}"
    before = time.monotonic()
    rabbitmqctl("close_connection", pids[0], "closed by a test")
    return before, time.monotonic()


def consumer_config(amqp_url: str, queue: str, **flags):
    """The options of ``consume`` resolved from flags, as the command resolves them.

    Tests default to a quick reconnect (0.5 s at most) and ignore the machine's environment.
    """
    from hurricane_runtime.config import ConsumeConfig

    given = {"amqp_url": amqp_url, "queue": queue, "reconnect_max_delay": "0.5"}
    given.update({name: str(value) for name, value in flags.items()})
    return ConsumeConfig.load(flags=given, settings=None, environ={})


async def wait_until(predicate, timeout: float, what: str, step: float = 0.01) -> float:
    """Poll ``predicate`` on the loop; return the seconds it took, fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(step)
    return loop.time() - started


@pytest.fixture
def start_consume(tmp_path, migrated_sqlite, rabbitmq, amqp_queue):
    """Factory: start ``manage.py consume`` of the test project on ``amqp_queue``.

    ``start_consume(*args, handler="items.handlers.record", amqp_url=None, env=None,
    database_url=None, wait=True, timeout=60)`` returns a ``Served`` (``probe``,
    ``wait_probe``, ``stop``, ``output``); ``served.record`` is the file the test project's
    handlers write their events to. The broker URL and queue come through the environment
    (``HURRICANE_AMQP_URL``, ``HURRICANE_QUEUE``), so flags can still override them.
    """
    import shutil as _shutil
    import subprocess as _subprocess
    import sys

    from conftest import TESTPROJECT, Served, base_env, free_port

    started = []

    def start(
        *args: str,
        handler: str = "items.handlers.record",
        amqp_url: str | None = None,
        env: dict | None = None,
        database_url: str | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ):
        index = len(started)
        if database_url is None:
            database = tmp_path / f"consume{index}.sqlite3"
            _shutil.copy(migrated_sqlite, database)
            database_url = f"sqlite:///{database}"
        probe_port = free_port()
        record = tmp_path / f"record{index}.txt"
        record.touch()
        process_env = base_env(database_url)
        process_env.update(
            {
                "HURRICANE_BIND": "127.0.0.1",
                "HURRICANE_PROBE_PORT": str(probe_port),
                "HURRICANE_SHUTDOWN_DELAY": "0",
                "HURRICANE_CHECK_INTERVAL": "0.2",
                "HURRICANE_AMQP_URL": amqp_url or rabbitmq,
                "HURRICANE_QUEUE": amqp_queue,
                "HURRICANE_RECONNECT_MAX_DELAY": "0.5",
                "TESTPROJECT_RECORD_FILE": str(record),
            }
        )
        process_env.update(env or {})
        log_path = tmp_path / f"consume{index}.log"
        with open(log_path, "wb") as log:
            proc = _subprocess.Popen(
                [sys.executable, "manage.py", "consume", handler, *args],
                cwd=TESTPROJECT,
                env=process_env,
                stdout=log,
                stderr=_subprocess.STDOUT,
                start_new_session=True,
            )
        served = Served(proc, None, probe_port, log_path)
        served.record = record
        served.connection_name = f"hurricane consume {amqp_queue} "
        started.append(served)
        if wait:
            served.wait_probe("/startup", 200, timeout=timeout)
        return served

    yield start
    for served in started:
        served.kill()


def recorded(served) -> list[str]:
    """The events the test project's handlers recorded so far ("handled m-1", ...)."""
    return served.record.read_text().splitlines()
