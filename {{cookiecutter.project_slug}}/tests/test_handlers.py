"""The example consumer: the handler called directly, then `manage.py consume` against a real
RabbitMQ (AMQP_URL, as `make services` starts it) when one is reachable."""

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hurricane_runtime.amqp import Message, Reject

from {{ cookiecutter.project_slug }}.items.handlers import handle
from {{ cookiecutter.project_slug }}.items.models import Item
from tests.processes import free_port, probe, unreachable, wait_until

PROJECT = Path(__file__).resolve().parent.parent
HANDLER = "{{ cookiecutter.project_slug }}.items.handlers.handle"


@pytest.mark.django_db
def test_a_message_becomes_an_item():
    handle(Message(body=json.dumps({"name": "  from the queue "}).encode(), message_id="m-1"))

    assert list(Item.objects.values_list("name", flat=True)) == ["from the queue"]


MALFORMED = {
    "not json": (b"name=x", "the body is not JSON"),
    "not utf-8": (b'{"name": "\xff"}', "the body is not JSON"),
    "a list": (b'["x"]', "the body is a JSON list, not an object"),
    "no name": (b'{"title": "x"}', '"name" is missing'),
    "empty name": (b'{"name": " "}', '"name" is missing'),
    "name not text": (b'{"name": 7}', '"name" is missing'),
    "name too long": (json.dumps({"name": "x" * 201}).encode(), "201 characters long, at most 200"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_message_is_rejected_with_one_clear_line(caplog, body, reason):
    caplog.set_level(logging.WARNING, logger="{{ cookiecutter.project_slug }}.items.handlers")

    with pytest.raises(Reject):  # the runtime dead-letters it: no retry could fix it
        handle(Message(body=body, message_id="m-2"))

    assert not Item.objects.exists()
    (record,) = caplog.records
    line = record.getMessage()
    assert "message m-2 rejected to the dead-letter queue" in line
    assert reason in line


# -- against a real broker --------------------------------------------------------------------


def broker_url() -> str:
    """The broker of the test run: TEST_AMQP_URL, else AMQP_URL (.env: `make services`)."""
    return os.environ.get("TEST_AMQP_URL") or os.environ.get("AMQP_URL", "")


async def publish_persistent(url: str, queue: str, bodies: list[bytes]) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue)


async def messages_in(url: str, queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count


async def delete_topology(url: str, queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dlq"):
            await channel.queue_delete(name)
        await channel.exchange_delete(f"{queue}.dlx")


def test_consume_creates_items_and_dead_letters_a_malformed_message(tmp_path):
    url = broker_url()
    reason = (
        unreachable(url, "RabbitMQ")
        if url
        else "no broker URL: set AMQP_URL (make services) or TEST_AMQP_URL"
    )
    if reason:
        pytest.skip(reason)
    queue = f"test-items-{uuid.uuid4().hex[:12]}"
    database = tmp_path / "consume.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "{{ cookiecutter.project_slug }}.settings.test",
        # A database file of its own, which both this test and the consumer process can open.
        "DATABASE_URL": f"sqlite:///{database}",
        "AMQP_URL": url,
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=PROJECT, env=env, check=True, timeout=120)
    port = free_port()
    consumer = subprocess.Popen(
        [*manage, "consume", HANDLER, "--queue", queue, "--probe-port", str(port)],
        cwd=PROJECT,
        env={**env, "HURRICANE_DRAIN_TIMEOUT": "5", "HURRICANE_SHUTDOWN_DELAY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: probe(port, "/ready") == 200, 60, "the consumer is ready", consumer)
        bodies = [json.dumps({"name": "first"}).encode(), b"not json", b'{"name": "second"}']
        asyncio.run(publish_persistent(url, queue, bodies))

        def names():
            with sqlite3.connect(database) as connection:
                rows = connection.execute("SELECT name FROM items_item").fetchall()
            return sorted(name for (name,) in rows)

        wait_until(lambda: len(names()) == 2, 30, "two items are created", consumer)
        # Handlers run concurrently (prefetch > 1): the order of the inserts is not the order
        # of the messages.
        assert names() == ["first", "second"]
        wait_until(
            lambda: asyncio.run(messages_in(url, f"{queue}.dlq")) == 1,
            30,
            "the malformed message is in the dead-letter queue",
            consumer,
        )
        assert asyncio.run(messages_in(url, queue)) == 0
        assert probe(port, "/ready") == 200, "a malformed message must not harm the consumer"
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            output, _ = consumer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            consumer.kill()
            output, _ = consumer.communicate()
        asyncio.run(delete_topology(url, queue))
    assert consumer.returncode == 0, output
    assert "rejected to the dead-letter queue" in output
