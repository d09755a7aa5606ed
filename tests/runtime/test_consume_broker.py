"""The consumer against the real RabbitMQ: topology, acks, dead letters, faults and drain.

These tests run the consumer in the test's own event loop (no subprocess) so that they can
look at its state between two messages; ``test_consume_command.py`` runs ``manage.py consume``
end to end with its probes.
"""

import asyncio
import collections

import pytest
from amqp_helpers import (
    close_connection_from_broker,
    consumer_config,
    drain_queue,
    publish_many,
    wait_until,
)

from hurricane_runtime.amqp import Requeue
from hurricane_runtime.amqp.supervisor import Consumer
from hurricane_runtime.state import StartupError
from tests.tcp_proxy import TcpProxy

HANDLER_PATH = "tests.handle"  # the handlers here are local functions; the path is for logs


async def started(config, handler) -> Consumer:
    consumer = Consumer(config, handler, HANDLER_PATH)
    await asyncio.wait_for(consumer.start(), 30)
    return consumer


async def stopped(consumer: Consumer, timeout: float = 10.0) -> bool:
    try:
        return await consumer.drain(timeout)
    finally:
        consumer.close()


def test_declaring_twice_is_idempotent_and_conflicts_name_the_argument(rabbitmq, amqp_queue):
    async def scenario():
        async def handler(message):
            pass

        first = await started(consumer_config(rabbitmq, amqp_queue), handler)
        second = await started(consumer_config(rabbitmq, amqp_queue), handler)
        assert not first.readiness_reasons() and not second.readiness_reasons()
        await stopped(second)
        await stopped(first)

        conflicting = Consumer(
            consumer_config(rabbitmq, amqp_queue, delivery_limit=5), handler, HANDLER_PATH
        )
        with pytest.raises(StartupError) as raised:
            await asyncio.wait_for(conflicting.start(), 10)  # at once, no reconnect loop
        conflicting.close()
        return str(raised.value)

    message = asyncio.run(scenario())
    assert f"queue '{amqp_queue}'" in message
    assert "'x-delivery-limit'" in message and "5" in message and "20" in message


def test_queue_is_durable_quorum_with_delivery_limit_and_dead_letters(rabbitmq, amqp_queue):
    async def scenario():
        import aio_pika

        async def handler(message):
            raise ValueError("cannot handle this")

        consumer = await started(consumer_config(rabbitmq, amqp_queue), handler)
        await stopped(consumer)
        # A passive declare with different arguments would fail: declare with the exact
        # arguments we expect, which the broker accepts only when they match.
        connection = await aio_pika.connect(rabbitmq)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(
                amqp_queue,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": 20,
                    "x-dead-letter-exchange": f"{amqp_queue}.dlx",
                    "x-dead-letter-routing-key": amqp_queue,
                },
            )

    asyncio.run(scenario())


def test_handler_errors_go_to_the_dead_letter_queue_and_others_are_acked(rabbitmq, amqp_queue):
    seen = []

    async def handler(message):
        seen.append(message.body)
        if message.body == b"bad":
            raise ValueError("cannot handle this")

    async def scenario():
        consumer = await started(consumer_config(rabbitmq, amqp_queue), handler)
        await publish_many(amqp_queue, [b"one", b"bad", b"two"])
        await wait_until(lambda: len(seen) == 3, 10, "three deliveries")
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        assert await stopped(consumer)
        return await drain_queue(f"{amqp_queue}.dlq")

    assert asyncio.run(scenario()) == [b"bad"]
    assert sorted(seen) == [b"bad", b"one", b"two"]
    assert asyncio.run(drain_queue(amqp_queue)) == []


def test_poison_message_is_dead_lettered_after_the_delivery_limit_while_others_flow(
    rabbitmq, amqp_queue
):
    limit = 3
    deliveries = collections.Counter()

    async def handler(message):
        deliveries[message.body] += 1
        if message.body == b"poison":
            raise Requeue()  # what a crash mid-message amounts to: the broker gets it back

    async def scenario():
        config = consumer_config(rabbitmq, amqp_queue, delivery_limit=limit, concurrency=4)
        consumer = await started(config, handler)
        await publish_many(amqp_queue, [b"poison", *(f"ok-{i}".encode() for i in range(50))])
        await wait_until(lambda: len(deliveries) == 51, 20, "every message delivered")
        dead = []
        for _ in range(200):
            dead += await drain_queue(f"{amqp_queue}.dlq")
            if dead:
                break
            await asyncio.sleep(0.05)
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        assert await stopped(consumer)
        return dead

    assert asyncio.run(scenario()) == [b"poison"]
    # The first delivery plus ``limit`` redeliveries; then the broker dead-letters it.
    assert deliveries[b"poison"] == limit + 1
    assert all(deliveries[f"ok-{i}".encode()] == 1 for i in range(50))


def test_thousand_messages_survive_a_network_cut_with_few_duplicates(rabbitmq, amqp_queue):
    prefetch = 10
    received = []

    async def handler(message):
        received.append(message.body)
        await asyncio.sleep(0.001)

    async def scenario(proxy):
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        config = consumer_config(url, amqp_queue, concurrency=prefetch, reconnect_max_delay=0.3)
        consumer = await started(config, handler)
        await publish_many(amqp_queue, [f"m-{i}" for i in range(1000)])
        await wait_until(lambda: len(received) >= 300, 30, "300 messages handled")
        proxy.cut()
        await wait_until(lambda: not consumer.consuming, 5, "the cut noticed")
        proxy.restore()
        await wait_until(lambda: len(set(received)) == 1000, 60, "every message handled")
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        assert await stopped(consumer)

    with TcpProxy(5672) as proxy:
        asyncio.run(scenario(proxy))
    assert set(received) == {f"m-{i}".encode() for i in range(1000)}
    duplicates = len(received) - 1000
    assert duplicates <= prefetch, f"{duplicates} duplicates with prefetch {prefetch}"
    assert asyncio.run(drain_queue(amqp_queue)) == []


def test_silent_partition_turns_readiness_503_within_a_second_and_recovers(rabbitmq, amqp_queue):
    async def handler(message):
        pass

    async def scenario(proxy):
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        consumer = await started(consumer_config(url, amqp_queue), handler)
        await asyncio.sleep(0.5)
        assert consumer.readiness_reasons() == []
        proxy.blackhole()
        took = await wait_until(consumer.readiness_reasons, 5, "readiness 503")
        assert consumer.liveness_reasons() == []
        proxy.restore()
        await wait_until(lambda: not consumer.readiness_reasons(), 30, "ready again")
        assert consumer.liveness_reasons() == []
        await stopped(consumer)
        return took

    with TcpProxy(5672) as proxy:
        took = asyncio.run(scenario(proxy))
    assert took < 1.5  # 0.8 s staleness bound plus one verification interval and slack


def test_consumer_cancelled_by_the_broker_turns_unready_and_recovers(rabbitmq, amqp_queue):
    async def handler(message):
        pass

    async def scenario():
        import aio_pika

        consumer = await started(consumer_config(rabbitmq, amqp_queue), handler)
        connection = await aio_pika.connect(rabbitmq)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(amqp_queue)
        took = await wait_until(consumer.readiness_reasons, 5, "readiness 503")
        assert "cancelled by the broker" in consumer.readiness_reasons()[0]
        await wait_until(lambda: not consumer.readiness_reasons(), 10, "ready again")

        await asyncio.to_thread(close_connection_from_broker, consumer.connection_name)
        took = max(took, await wait_until(consumer.readiness_reasons, 5, "readiness 503"))
        await wait_until(lambda: not consumer.readiness_reasons(), 10, "ready again")
        assert consumer.liveness_reasons() == []
        await stopped(consumer)
        return took

    assert asyncio.run(scenario()) < 1.0


def test_drain_hands_back_unstarted_messages_and_finishes_running_ones(rabbitmq, amqp_queue):
    running, finished = set(), set()

    async def handler(message):
        running.add(message.body)
        await asyncio.sleep(1.0)
        finished.add(message.body)

    async def scenario():
        consumer = await started(consumer_config(rabbitmq, amqp_queue, concurrency=5), handler)
        await publish_many(amqp_queue, [f"m-{i}" for i in range(20)])
        await wait_until(lambda: len(running) == 5, 10, "five handlers running")
        consumer.stop_accepting()
        assert consumer.readiness_reasons()  # not consuming any more
        drained = await stopped(consumer, timeout=10)
        return drained

    assert asyncio.run(scenario()) is True
    assert running == finished and len(finished) == 5
    # The five finished messages were acked (not back in the queue), the fifteen that no
    # handler started were handed back; the consumer's connection is closed, so the broker
    # holds nothing unacknowledged for it.
    remaining = asyncio.run(drain_queue(amqp_queue))
    assert sorted(remaining) == sorted({f"m-{i}".encode() for i in range(20)} - finished)


def test_drain_requeues_handlers_that_outlive_the_drain_timeout(rabbitmq, amqp_queue):
    async def handler(message):
        await asyncio.sleep(30)

    async def scenario():
        consumer = await started(consumer_config(rabbitmq, amqp_queue, concurrency=3), handler)
        await publish_many(amqp_queue, [b"a", b"b", b"c", b"d"])
        await wait_until(lambda: consumer.in_process == 3, 10, "three handlers running")
        loop = asyncio.get_running_loop()
        began = loop.time()
        drained = await stopped(consumer, timeout=0.5)
        return drained, loop.time() - began

    drained, took = asyncio.run(scenario())
    assert drained is True and took < 5  # what outlived the timeout is back in the queue
    assert sorted(asyncio.run(drain_queue(amqp_queue))) == [b"a", b"b", b"c", b"d"]


def test_broker_down_at_start_keeps_starting_then_consumes(rabbitmq, amqp_queue):
    async def handler(message):
        pass

    async def scenario(proxy):
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        config = consumer_config(url, amqp_queue, reconnect_max_delay=0.5)
        consumer = Consumer(config, handler, HANDLER_PATH)
        start = asyncio.ensure_future(consumer.start())
        await wait_until(lambda: consumer.attempts >= 3, 10, "three connection attempts")
        assert not start.done()
        assert consumer.startup_reasons() and consumer.readiness_reasons()
        assert "waiting for the broker" in consumer.startup_reasons()[0]
        assert consumer.liveness_reasons() == []  # starting is not dead
        proxy.restore()
        await asyncio.wait_for(start, 10)
        assert consumer.startup_reasons() == [] and consumer.readiness_reasons() == []
        await stopped(consumer)

    with TcpProxy(5672) as proxy:
        proxy.cut()
        asyncio.run(scenario(proxy))


def test_liveness_fails_only_after_being_disconnected_longer_than_the_bound(rabbitmq, amqp_queue):
    async def handler(message):
        pass

    async def scenario(proxy):
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        config = consumer_config(url, amqp_queue, disconnected_timeout=2.0)
        consumer = await started(config, handler)
        proxy.cut()
        await wait_until(consumer.readiness_reasons, 5, "readiness 503")
        assert consumer.liveness_reasons() == []
        took = await wait_until(consumer.liveness_reasons, 10, "liveness 503")
        assert "not consuming for" in consumer.liveness_reasons()[0]
        proxy.restore()
        await wait_until(lambda: not consumer.liveness_reasons(), 10, "alive again")
        await stopped(consumer)
        return took

    with TcpProxy(5672) as proxy:
        assert asyncio.run(scenario(proxy)) >= 1.5


def test_metrics_count_messages_by_status_like_faststream(rabbitmq, amqp_queue):
    from prometheus_client import CollectorRegistry

    from hurricane_runtime.amqp import Reject

    registry = CollectorRegistry()

    async def handler(message):
        if message.body == b"error":
            raise KeyError("missing")
        if message.body == b"reject":
            raise Reject()
        if message.body == b"retry" and not message.redelivered:
            raise Requeue()

    async def scenario():
        config = consumer_config(rabbitmq, amqp_queue)
        consumer = Consumer(config, handler, HANDLER_PATH, registry=registry)
        await asyncio.wait_for(consumer.start(), 30)
        await publish_many(amqp_queue, [b"ok", b"ok", b"error", b"reject", b"retry"])
        received = "hurricane_received_messages_total"
        labels = {"broker": "rabbitmq", "handler": amqp_queue}
        await wait_until(lambda: registry.get_sample_value(received, labels) == 6, 10, "6")
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        assert registry.get_sample_value("hurricane_consumers_active", labels) == 1
        await stopped(consumer)
        assert registry.get_sample_value("hurricane_consumers_active", labels) == 0

    asyncio.run(scenario())
    labels = {"broker": "rabbitmq", "handler": amqp_queue}

    def value(name, **extra):
        return registry.get_sample_value(name, {**labels, **extra})

    processed = "hurricane_received_processed_messages_total"
    assert value(processed, status="acked") == 3  # two oks and the retried message
    assert value(processed, status="rejected") == 1
    assert value(processed, status="nacked") == 1
    assert value(processed, status="error") == 1
    assert (
        value("hurricane_received_processed_messages_exceptions_total", exception_type="KeyError")
        == 1
    )
    assert value("hurricane_received_redeliveries_total") == 1
    assert value("hurricane_dead_lettered_messages_total") == 2  # the error and the reject
    assert value("hurricane_received_processed_messages_duration_seconds_count") == 6
    assert value("hurricane_received_messages_in_process") == 0


@pytest.mark.parametrize(
    ("policy", "deliveries", "dead"),
    [
        ("nack_on_error", 3, [b"boom"]),  # retried up to the delivery limit (2), then dead
        ("ack", 1, []),  # acked despite the error: gone
        ("ack_first", 1, []),  # acked before the handler ran: gone
    ],
)
def test_ack_policies_decide_what_an_error_does(rabbitmq, amqp_queue, policy, deliveries, dead):
    seen = collections.Counter()

    async def handler(message):
        seen[message.body] += 1
        raise RuntimeError("handler bug")

    async def scenario():
        config = consumer_config(rabbitmq, amqp_queue, ack_policy=policy, delivery_limit=2)
        consumer = await started(config, handler)
        await publish_many(amqp_queue, [b"boom"])
        await wait_until(lambda: seen[b"boom"] >= deliveries, 10, f"{deliveries} deliveries")
        await asyncio.sleep(0.5)  # time for a redelivery that must not come
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        await stopped(consumer)
        return await drain_queue(f"{amqp_queue}.dlq"), await drain_queue(amqp_queue)

    dead_letters, left = asyncio.run(scenario())
    assert seen[b"boom"] == deliveries
    assert dead_letters == dead and left == []
