"""Fixtures for the runtime tests: a real ``manage.py serve`` on loopback ports.

The main fixture is ``start_serve``, a factory. Each call starts ``python manage.py serve`` of
the test project (``tests/runtime/testproject``) in a subprocess on free 127.0.0.1 ports and,
by default, waits until the startup probe answers 200. Everything it starts is killed at the
end of the test. Reuse it from any test under ``tests/runtime``::

    def test_metrics_are_served(start_serve):
        served = start_serve("--workers", "2", env={"HURRICANE_LOG_FORMAT": "json"})
        status, headers, body = served.get("/json/")
        status, body = served.probe_get("/metrics")
        served.stop()                      # SIGTERM, then wait for the exit code
        assert "serving on" in served.output()

``start_serve(*args, env=None, database_url=None, migrate=True, wait=True, port=None,
probe_port=None, timeout=60)``:

- ``args``: extra ``serve`` flags; flags win over everything else, so a test that passes
  ``--port`` must pass the same number as ``port=`` for the fixture to find the server;
- ``env``: extra environment variables (``HURRICANE_*`` or the test project's ``TESTPROJECT_*``);
- ``database_url``: defaults to a fresh, migrated SQLite file for this test (``migrate=False``
  gives an empty one); pass ``postgres_url`` (fixture) or a ``TcpProxy`` URL for PostgreSQL;
- ``wait``: wait for the startup probe to answer 200 (False: return right after spawning).

The server gets ``HURRICANE_BIND=127.0.0.1``, its ports, ``HURRICANE_SHUTDOWN_DELAY=0`` and a
fast ``HURRICANE_CHECK_INTERVAL`` through the environment, the weakest source, so a test can
still override any of them with a flag or a setting.

Helpers here (``raw_request``, ``spawn_serve``) are small on purpose: ``tests/helpers.py``
imports cookiecutter, which the ``runtime`` nox session does not install; ``free_port`` comes
from ``tests/ports.py``, shared with every session.
"""

import contextlib
import errno
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.tcp_proxy import TcpProxy

HERE = Path(__file__).resolve().parent
TESTPROJECT = HERE / "testproject"
REPO_ROOT = HERE.parents[1]
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432


def base_env(database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HURRICANE_", "TESTPROJECT_", "DJANGO_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join([str(TESTPROJECT), str(REPO_ROOT)]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(*args: str, database_url: str, timeout: float = 120, env=None):
    """Run ``manage.py`` of the test project to completion."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=TESTPROJECT,
        env={**base_env(database_url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def raw_request(port: int, data: bytes, timeout: float = 10.0, read_all: bool = True) -> bytes:
    """Send raw bytes to 127.0.0.1:port; return what comes back until close (or timeout)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


class ProbeUnreachable(AssertionError):
    """Every connect to the probe port failed with "no route to host" until the deadline.

    Seen once on a CI machine: connects to one freshly chosen 127.0.0.1 port failed with
    EHOSTUNREACH for a whole minute while the server logged that it listened there. That is the
    machine's network, not ``serve``, so ``spawn_serve`` starts the server again on new ports.
    """


class Served:
    """A running ``manage.py serve`` subprocess and ways to talk to it."""

    def __init__(self, proc, port: int, probe_port: int, log_path: Path):
        self.proc = proc
        self.port = port
        self.probe_port = probe_port
        self.log_path = log_path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _request(self, port, method, path, body=None, headers=None, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            # headers: an http.client.HTTPMessage, case-insensitive like HTTP itself
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def get(self, path: str, headers=None, timeout: float = 30.0):
        """GET on the app port: (status, headers, body)."""
        return self._request(self.port, "GET", path, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30.0):
        return self._request(self.port, method, path, body, headers, timeout)

    def probe_get(self, path: str, timeout: float = 10.0):
        """GET on the probe port: (status, body)."""
        status, _, body = self._request(self.probe_port, "GET", path, timeout=timeout)
        return status, body

    def probe(self, path: str, timeout: float = 10.0):
        """GET a probe: (status, decoded JSON)."""
        status, body = self.probe_get(path, timeout=timeout)
        return status, json.loads(body)

    def wait_probe(self, path: str, status: int = 200, timeout: float = 60.0, reason=None):
        """Poll a probe until it answers ``status`` (and has ``reason`` among its reasons)."""
        deadline = time.monotonic() + timeout
        last, last_errno = "no answer", None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.proc.returncode} while waiting for {path}:\n"
                    + self.output()
                )
            try:
                code, body = self.probe(path, timeout=5)
                reasons = " ".join(body.get("reasons", []))
                if code == status and (reason is None or reason in reasons):
                    return body
                last = f"{code} {body}"
            except (OSError, ValueError, http.client.HTTPException) as error:
                last = repr(error)
                last_errno = getattr(error, "errno", None)
            else:
                last_errno = None
            time.sleep(0.1)
        failure = ProbeUnreachable if last_errno == errno.EHOSTUNREACH else AssertionError
        raise failure(
            f"{path} did not answer {status} within {timeout}s (last: {last})\n" + self.output()
        )

    def signal(self, signum=signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"serve did not exit within {timeout}s\n" + self.output()
            ) from None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and any child it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A migrated SQLite database, made once and copied for each test."""
    path = tmp_path_factory.mktemp("db") / "migrated.sqlite3"
    result = manage("migrate", "--noinput", database_url=f"sqlite:///{path}")
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def spawn_serve(
    workdir: Path,
    migrated_sqlite: Path,
    *args: str,
    env: dict | None = None,
    database_url: str | None = None,
    migrate: bool = True,
    wait: bool = True,
    port: int | None = None,
    probe_port: int | None = None,
    timeout: float = 60.0,
    name: str = "serve",
    on_spawn=None,
) -> Served:
    """Start ``manage.py serve`` with its database and log in ``workdir`` (see ``start_serve``).

    For a fixture wider than one test (a module-scoped server); the caller kills it.
    ``on_spawn(served)`` is called for every process started, before it is waited for, so a
    caller can kill one that never came up.
    """
    ports_chosen_here = port is None and probe_port is None
    for attempt in (1, 2):
        served = _spawn_once(
            workdir, migrated_sqlite, args, env, database_url, migrate, port, probe_port, name
        )
        if on_spawn is not None:
            on_spawn(served)
        if not wait:
            return served
        try:
            served.wait_probe("/startup", 200, timeout=timeout)
        except ProbeUnreachable:
            served.kill()
            if attempt == 2 or not ports_chosen_here:
                raise
        except BaseException:
            served.kill()
            raise
        else:
            return served


def _spawn_once(workdir, migrated_sqlite, args, env, database_url, migrate, port, probe_port, name):
    """One ``manage.py serve`` process, not waited for."""
    if database_url is None:
        database = workdir / f"{name}.sqlite3"
        if migrate:
            shutil.copy(migrated_sqlite, database)
        database_url = f"sqlite:///{database}"
    port = port or free_port()
    if not probe_port:
        # Two ports free at one moment can be the same port: serve refuses that at start-up.
        probe_port = free_port()
        while probe_port == port:
            probe_port = free_port()
    process_env = base_env(database_url)
    process_env.update(
        {
            "HURRICANE_BIND": "127.0.0.1",
            "HURRICANE_PORT": str(port),
            "HURRICANE_PROBE_PORT": str(probe_port),
            "HURRICANE_SHUTDOWN_DELAY": "0",
            "HURRICANE_CHECK_INTERVAL": "0.2",
        }
    )
    process_env.update(env or {})
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", *args],
            cwd=TESTPROJECT,
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group, so teardown also ends children (the autoreloader's).
            start_new_session=True,
        )
    return Served(proc, port, probe_port, log_path)


@pytest.fixture
def start_serve(tmp_path, migrated_sqlite):
    """Factory: start ``manage.py serve`` of the test project (see the module docstring)."""
    started: list[Served] = []

    def start(*args: str, **options) -> Served:
        # Registered before it is waited for, so teardown kills a server that never started.
        return spawn_serve(
            tmp_path,
            migrated_sqlite,
            *args,
            name=f"serve{len(started)}",
            on_spawn=started.append,
            **options,
        )

    yield start
    for served in started:
        served.kill()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the ``test`` database on the machine's PostgreSQL; skips when unreachable."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed")
    try:
        psycopg.connect(
            host=POSTGRES_HOST,
            port=POSTGRES_PORT,
            dbname="test",
            user="postgres",
            connect_timeout=3,
        ).close()
    except Exception as error:
        pytest.skip(f"PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} is not reachable: {error}")
    return f"postgres://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"


@pytest.fixture
def postgres_proxy(postgres_url):
    """A ``TcpProxy`` in front of PostgreSQL (``cut()`` is the outage); ``.url`` points at it."""
    with TcpProxy(POSTGRES_PORT, POSTGRES_HOST) as proxy:
        proxy.url = f"postgres://postgres@127.0.0.1:{proxy.port}/test"
        yield proxy


# Fixtures of the consume tests (``rabbitmq``, ``amqp_queue``, ``start_consume``) and of the
# Celery tests (``start_celery``, brokers); imported last because they build on ``Served``
# and ``base_env`` above.
from amqp_helpers import amqp_queue, rabbitmq, start_consume  # noqa: E402, F401, I001
from celery_helpers import broker_url, rabbitmq_url, redis_url, start_celery  # noqa: E402, F401, I001
