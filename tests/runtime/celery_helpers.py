"""Real ``celery worker`` and ``celery beat`` processes of the test project, for the Celery tests.

``start_celery`` (a fixture factory, import it into a test module) starts
``celery -A testproject worker|beat`` in its own process group with a probe port, a queue of
its own on the chosen broker and a fast check interval, and by default waits for the startup
probe. It returns a ``Served`` (see ``conftest.py``), so probes are read the same way as for
``serve``. Teardown kills every process group it started and deletes the test's queue::

    def test_worker_is_ready(start_celery, rabbitmq_url):
        worker = start_celery("worker", broker_url=rabbitmq_url)
        assert worker.probe("/ready")[0] == 200

``client(broker_url, queue)`` is a Celery app in the test process that sends tasks by name to
that queue, declared exactly as the worker declares it (quorum on RabbitMQ).
"""

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
from celery import Celery
from conftest import TESTPROJECT, Served, base_env, free_port
from kombu import Connection

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"


def reachable(url: str) -> str | None:
    """Why the broker at ``url`` cannot be reached (None: it can)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return None
    except OSError as error:
        return f"{parts.scheme} broker on {parts.hostname}:{parts.port} is not reachable: {error}"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    why = reachable(RABBITMQ_URL)
    if why:
        pytest.skip(why)
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    why = reachable(REDIS_URL)
    if why:
        pytest.skip(why)
    return REDIS_URL


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_url(request) -> str:
    """Each test using it runs once per broker answer of the template."""
    return request.getfixturevalue(f"{request.param}_url")


def with_port(url: str, port: int) -> str:
    """``url`` pointed at 127.0.0.1:``port`` (a ``TcpProxy`` in front of the broker)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


def client(broker_url: str, queue: str) -> Celery:
    """A Celery app that sends to ``queue`` the way the test project declares it."""
    app = Celery("hurricane-tests", broker=broker_url)
    app.conf.task_default_queue = queue
    app.conf.broker_connection_retry_on_startup = False
    if broker_url.startswith("amqp"):
        app.conf.task_default_queue_type = "quorum"
    return app


def delete_queue(broker_url: str, queue: str) -> None:
    """Delete ``queue`` on the machine's broker of ``broker_url``'s kind (also through a proxy)."""
    broker_url = REDIS_URL if broker_url.startswith("redis") else RABBITMQ_URL
    with contextlib.suppress(Exception), Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        channel.queue_delete(queue)
        if broker_url.startswith("redis"):  # the list, and the bindings of its exchange
            channel.client.delete(
                queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
            )


class CeleryProcess(Served):
    """A ``celery worker`` or ``celery beat`` of the test project."""

    def __init__(self, proc, probe_port, log_path, queue, nodename, env):
        super().__init__(proc, 0, probe_port, log_path)
        self.queue = queue
        self.nodename = nodename
        self.env = env

    def ping(self, timeout: float = 3.0) -> subprocess.CompletedProcess:
        """``celery inspect ping`` of this worker, the exec probe people use today."""
        return subprocess.run(
            [sys.executable, "-m", "celery", "-A", "testproject", "inspect", "ping"]
            + ["-d", self.nodename, "-t", str(timeout)],
            cwd=TESTPROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout + 60,
        )

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout}s\n{self.output()}")
            time.sleep(0.1)


@pytest.fixture
def start_celery(tmp_path):
    """Factory: start a worker or beat of the test project (see the module docstring).

    ``start_celery(kind, *args, broker_url, queue=None, env=None, database_url=None,
    wait=True, timeout=60)``; ``kind`` is "worker" or "beat"; ``args`` are extra Celery flags
    (workers default to ``--concurrency 1``); ``queue`` shares a queue between two processes.
    """
    started: list[CeleryProcess] = []
    queues: set[tuple[str, str]] = set()

    def start(
        kind: str,
        *args: str,
        broker_url: str,
        queue: str | None = None,
        env: dict | None = None,
        database_url: str | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> CeleryProcess:
        index = len(started)
        queue = queue or f"hurricane-test-{uuid.uuid4().hex[:12]}"
        queues.add((broker_url, queue))
        probe_port = free_port()
        nodename = f"{kind}{index}-{uuid.uuid4().hex[:8]}@localhost"
        process_env = base_env(database_url or f"sqlite:///{tmp_path / 'celery.sqlite3'}")
        process_env.update(
            {
                "TESTPROJECT_BROKER_URL": broker_url,
                "TESTPROJECT_CELERY_QUEUE": queue,
                "HURRICANE_BIND": "127.0.0.1",
                "HURRICANE_PROBE_PORT": str(probe_port),
                "HURRICANE_CHECK_INTERVAL": "0.2",
            }
        )
        process_env.update(env or {})
        command = [sys.executable, "-m", "celery", "-A", "testproject", kind, "--loglevel=INFO"]
        if kind == "worker":
            command += ["-n", nodename, "--without-gossip"]
            if not any(arg.startswith(("-c", "--concurrency", "-P", "--pool")) for arg in args):
                command += ["--concurrency", "1"]
        else:
            command += ["--schedule", str(tmp_path / f"beat-schedule-{index}")]
        log_path = tmp_path / f"{kind}{index}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*command, *args],
                cwd=TESTPROJECT,
                env=process_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = CeleryProcess(proc, probe_port, log_path, queue, nodename, process_env)
        started.append(process)
        if wait:
            process.wait_probe("/startup", 200, timeout=timeout)
        return process

    yield start
    for process in started:
        process.kill()
    for broker_url, queue in queues:
        delete_queue(broker_url, queue)


def poll(check, seconds: float, every: float = 0.5) -> list:
    """Call ``check()`` every ``every`` seconds for ``seconds``; return what it returned."""
    results = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results.append(check())
        time.sleep(every)
    return results
