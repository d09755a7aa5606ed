"""The publish helper: confirmed publishing from threads and coroutines, and its errors."""

import asyncio
import json
import threading
import uuid

import pytest
from amqp_helpers import drain_queue

from hurricane_runtime.amqp import apublish, publish
from hurricane_runtime.amqp.publisher import PublishError, close_publishers
from tests.tcp_proxy import TcpProxy


async def declare(url: str, queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})


def test_publish_from_threads_and_coroutines_is_confirmed(rabbitmq, amqp_queue):
    asyncio.run(declare(rabbitmq, amqp_queue))
    errors = []

    def view(n):  # what a Django view on a worker thread does
        try:
            publish({"order": n}, amqp_queue, amqp_url=rabbitmq)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=view, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    async def handler_side():
        await apublish("from a coroutine", amqp_queue, amqp_url=rabbitmq)
        await apublish(b"\x00raw", amqp_queue, amqp_url=rabbitmq, headers={"kind": "raw"})
        await close_publishers()

    asyncio.run(handler_side())
    assert errors == []
    # Confirmed means on the broker: everything is in the queue right after the calls return.
    bodies = asyncio.run(drain_queue(amqp_queue))
    orders = sorted(json.loads(body)["order"] for body in bodies[:5] if body.startswith(b"{"))
    assert orders == [0, 1, 2, 3, 4]
    assert b"from a coroutine" in bodies and b"\x00raw" in bodies


def test_unroutable_and_unreachable_messages_raise(rabbitmq):
    with pytest.raises(PublishError, match="NO_ROUTE"):
        publish(b"lost?", f"no-such-queue-{uuid.uuid4().hex}", amqp_url=rabbitmq)
    with TcpProxy(5672) as proxy:
        proxy.cut()
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        with pytest.raises(PublishError, match="could not publish"):
            publish(b"nowhere to go", "any", amqp_url=url, timeout=3)


def test_blocking_publish_refuses_to_run_on_an_event_loop(rabbitmq):
    async def on_loop():
        publish(b"x", "any", amqp_url=rabbitmq)

    with pytest.raises(PublishError, match="apublish"):
        asyncio.run(on_loop())
