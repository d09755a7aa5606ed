"""Helpers for the tests that start a real process of the project (consumer, worker, server)
and talk to the backing services on this machine: ports, probes, waiting, reachability."""

import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

# Ports of the services the tests reach when their URL names none.
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379}


def unreachable(url: str, service: str = "the broker") -> str | None:
    """Why no test can use ``service`` at ``url``, or None when it answers on its port."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2):
            return None
    except OSError as error:
        where = f"{parts.hostname}:{port}"
        return f"{service} at {where} is not reachable ({error}); `make services` starts one"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(port: int, path: str) -> int:
    """The status of ``path`` on the probe port (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_until(condition, timeout: float, what: str, process=None):
    """``condition()``'s first true value within ``timeout`` seconds; fails early when
    ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode} before {what}")
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")
