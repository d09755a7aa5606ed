"""The live feed end to end: a real `manage.py serve` with websockets on, the real Redis
(REDIS_URL, `make services`), and an Item created in this process reaching a socket of that
server, as it reaches every pod in production. Skipped when Redis is not reachable."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import override_settings
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.settings import base
from tests.processes import free_port

PROJECT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_reachable():
    address = urlsplit(REDIS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 6379), timeout=2).close()
    except OSError as error:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({error}); `make services` starts one")


@pytest.fixture(scope="module")
def server(redis_reachable, tmp_path_factory):
    """`manage.py serve` with the local settings, websockets on, its own SQLite file; yields
    (app port, probe port) once ready (readiness includes the channel layer)."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port, probe_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "{{ cookiecutter.project_slug }}.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "REDIS_URL": REDIS_URL,
        "HURRICANE_PORT": str(port),
        "HURRICANE_PROBE_PORT": str(probe_port),
        "HURRICANE_WEBSOCKETS": "true",
        # Stop quickly at the end of the test: no load balancer to wait for, nothing to drain.
        "HURRICANE_SHUTDOWN_DELAY": "0",
        "HURRICANE_DRAIN_TIMEOUT": "2",
    }
    manage = [sys.executable, "manage.py"]
    migrate = [*manage, "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(migrate, cwd=PROJECT, env=env, check=True)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*manage, "serve"], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(process, probe_port, tmp_path / "serve.log")
        yield port, probe_port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_ready(process, probe_port, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/ready", timeout=2):
                return
        except OSError:  # refused, or not ready yet (URLError is an OSError)
            time.sleep(0.2)
    pytest.fail(f"serve was not ready within {timeout} s:\n{log_path.read_text()}")


def feed(port, origin):
    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/items/", headers={"Origin": origin}, connect_timeout=5
    )
    return websocket_connect(request)


@pytest.mark.django_db(transaction=True)  # commits, so the feed hears of the item
def test_an_item_created_here_reaches_a_socket_of_the_server(server):
    port, _ = server
    name = f"live {time.time_ns()}"

    async def scenario():
        socket = await feed(port, f"http://127.0.0.1:{port}")
        await database_sync_to_async(Item.objects.create)(name=name)
        # Other runs may share the Redis: wait for our item among whatever arrives.
        while True:
            message = json.loads(await asyncio.wait_for(socket.read_message(), timeout=10))
            if message["item"]["name"] == name:
                socket.close()
                return message

    # This process sends through Redis, as another pod would.
    with override_settings(CHANNEL_LAYERS=base.CHANNEL_LAYERS):
        message = async_to_sync(scenario)()

    item = Item.objects.get(name=name)
    assert message == {
        "type": "item.created",
        "item": {"id": item.pk, "name": name, "created_at": item.created_at.isoformat()},
    }


def test_the_server_refuses_sockets_from_other_sites(server):
    port, _ = server

    async def handshake():
        with pytest.raises(HTTPClientError) as refused:
            await feed(port, "https://evil.example")
        return refused.value.code

    assert async_to_sync(handshake)() == 403
