"""Start, pin, wait for and stop the servers under test.

Every server runs pinned to ``SERVER_CORE`` in its own session (process group), logs to a file
and is registered for clean-up, so an interrupted benchmark leaves nothing running.
"""

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_PROJECT = REPO_ROOT / "benchmarks" / "benchproject"
SERVER_CORE = 0
CLIENT_CORE = 1
HOST = "127.0.0.1"

_running: list["Server"] = []


def _can_pin() -> bool:
    """Pinning needs two cores we may use and the ``taskset`` tool."""
    allowed = os.sched_getaffinity(0)
    return {SERVER_CORE, CLIENT_CORE} <= allowed and shutil.which("taskset") is not None


# Decided once at import, before the harness pins itself to the client core.
_PINNING = _can_pin()


def pinning_available() -> bool:
    return _PINNING


def pinned(argv: list[str], core: int) -> list[str]:
    """``argv`` run on ``core`` when pinning is available, unchanged otherwise."""
    if not pinning_available():
        return argv
    return ["taskset", "-c", str(core), *argv]


def pin_harness_to_client_core() -> None:
    """The harness itself (probe sampler, SIGTERM clients) shares the load generator's core."""
    if pinning_available():
        os.sched_setaffinity(0, {CLIENT_CORE})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def free_port_pair() -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are both free (app port and probe port).

    "Free" as the servers see it: they listen with ``SO_REUSEADDR``, so a port whose old
    connections sit in TIME-WAIT (thousands after a gunicorn run) is free for them, and this
    check must not refuse it either.
    """
    for _ in range(200):
        port = free_port()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports found")


def server_env(database_env: dict[str, str]) -> dict[str, str]:
    """Environment of every server: the repository and the bench project importable."""
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(BENCH_PROJECT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    env["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(database_env)
    return env


@dataclass
class ServerSpec:
    """How to start one server and where to reach it."""

    name: str
    argv: list[str]
    port: int
    ready_path: str  # answers 200 once the server is ready
    probe_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ready_port(self) -> int:
        return self.probe_port if self.probe_port is not None else self.port


def gunicorn_spec(env: dict[str, str], port: int) -> ServerSpec:
    """gunicorn, sync worker, one process: the baseline."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "benchproject.wsgi:application",
        "--worker-class",
        "sync",
        "--workers",
        "1",
        "--bind",
        f"{HOST}:{port}",
        "--chdir",
        str(BENCH_PROJECT),
    ]
    return ServerSpec("gunicorn", argv, port, "/json/", env=env)


def serve_spec(
    env: dict[str, str],
    port: int,
    workers: int | None,
    extra: list[str],
    name: str = "serve",
    switch_interval_ms: float | None = None,
) -> ServerSpec:
    """``manage.py serve`` on ``port`` with its probes on ``port + 1``."""
    argv = [
        sys.executable,
        str(BENCH_PROJECT / "manage.py"),
        "serve",
        "--bind",
        HOST,
        "--port",
        str(port),
        "--probe-port",
        str(port + 1),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    argv += extra
    if switch_interval_ms is not None:
        argv = with_switch_interval(argv, switch_interval_ms)
    return ServerSpec(name, argv, port, "/startup", probe_port=port + 1, env=env)


def with_switch_interval(argv: list[str], milliseconds: float) -> list[str]:
    """Run ``argv`` (a Python script) with ``sys.setswitchinterval`` set first: an experiment
    knob for how long a thread waiting for the GIL (the IOLoop answering a probe) may wait."""
    program = (
        "import runpy, sys; "
        f"sys.setswitchinterval({milliseconds / 1000!r}); "
        f"sys.argv = {argv[1:]!r}; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    return [argv[0], "-c", program]


def serve_help(env: dict[str, str]) -> str:
    """``serve --help`` output ('' when the command does not exist yet)."""
    result = subprocess.run(
        [sys.executable, str(BENCH_PROJECT / "manage.py"), "serve", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout if result.returncode == 0 else ""


class Server:
    """A running server process (and its children, in their own process group)."""

    def __init__(self, spec: ServerSpec, log_dir: Path):
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = spec.name.replace(" ", "_").replace("-", "")
        self.log_path = log_dir / f"{stem}-{spec.port}.log"
        self._log = self.log_path.open("ab")
        self.terminated = False
        self.spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            pinned(spec.argv, SERVER_CORE),
            cwd=BENCH_PROJECT,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _running.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.spec.port}{path}"

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll the ready path every 10 ms; return seconds from spawn to the first 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.process.returncode}; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            if get_status(self.spec.ready_port, self.spec.ready_path, timeout=1.0) == 200:
                return time.perf_counter() - self.spawned_at
            time.sleep(0.01)
        raise RuntimeError(f"{self.spec.name} not ready within {timeout}s; see {self.log_path}")

    def terminate(self) -> None:
        """Send SIGTERM to the server's main process only (as Kubernetes does)."""
        self.terminated = True
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        """Exit code, or ``None`` if still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL to the whole process group if it does not exit in time."""
        if self.process.poll() is None:
            if not self.terminated:  # a second SIGTERM would mean "exit at once"
                self.terminate()
            if self.wait_exit(timeout) is None:
                self.kill()
        self.kill_leftover_children()
        self._log.close()
        if self in _running:
            _running.remove(self)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def kill_leftover_children(self) -> None:
        """A gunicorn worker may outlive its master for a moment: end our own group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def get_status(port: int, path: str, timeout: float) -> int | None:
    """Status of one GET on a fresh connection, ``None`` when nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@atexit.register
def _stop_everything() -> None:
    for server in list(_running):
        server.kill()
