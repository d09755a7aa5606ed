"""Fixtures of the async-view and websocket tests: the machine's Redis, when reachable."""

import socket

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the machine's Redis (a database of its own); skips when unreachable."""
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2).close()
    except OSError as error:
        pytest.skip(f"Redis on {REDIS_HOST}:{REDIS_PORT} is not reachable: {error}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/5"
