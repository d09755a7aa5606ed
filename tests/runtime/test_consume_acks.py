"""Acks sent per loop pass (``amqp/acks.py``): never a tag the broker no longer holds.

The model below settles tags the way RabbitMQ does (a ``multiple`` ack takes every unsettled
tag up to its own; any tag it no longer holds closes the channel). Random completion orders
and fates run through ``ChannelAcks`` against it; the broker tests then check the same against
the real RabbitMQ, where a wrong tag would close the channel and redeliver messages.
"""

import asyncio
import logging
import random

from amqp_helpers import consumer_config, drain_queue, publish_many, wait_until

from hurricane_runtime.amqp import Reject, Requeue
from hurricane_runtime.amqp.acks import ChannelAcks
from hurricane_runtime.amqp.supervisor import Consumer
from tests.tcp_proxy import TcpProxy

# A Basic.Ack frame on the wire: frame header 7, class and method 4, tag 8, flags 1, end 1.
ACK_FRAME_BYTES = 21


class UnknownTag(Exception):
    """What RabbitMQ answers (PRECONDITION_FAILED, channel closed) to a tag it does not hold."""


class ModelChannel:
    """A channel's unsettled tags as the broker keeps them, with the broker's rules."""

    def __init__(self):
        self.unsettled: set[int] = set()
        self.frames: list[tuple] = []
        self.settled: dict[int, str] = {}

    def deliver(self, tag: int) -> None:
        self.unsettled.add(tag)

    def _take(self, tag: int, fate: str) -> None:
        if tag not in self.unsettled:
            raise UnknownTag(tag)
        self.unsettled.discard(tag)
        self.settled[tag] = fate

    async def basic_ack(self, tag, multiple=False, wait=True):
        self.frames.append(("ack", tag, multiple))
        self._take(tag, "ack")
        if multiple:
            for lower in [t for t in self.unsettled if t < tag]:
                self._take(lower, "ack")

    async def basic_nack(self, tag, multiple=False, requeue=True, wait=True):
        self.frames.append(("requeue", tag))
        self._take(tag, "requeue")

    async def basic_reject(self, tag, *, requeue=True, wait=True):
        self.frames.append(("reject", tag))
        self._take(tag, "reject")


async def _settle_all(acks: ChannelAcks) -> None:
    await acks.flush()
    await asyncio.sleep(0)


def test_acks_in_delivery_order_go_as_one_multiple_ack():
    async def scenario():
        channel = ModelChannel()
        acks = ChannelAcks(channel, asyncio.get_running_loop())
        for tag in range(1, 51):
            channel.deliver(tag)
            acks.received(tag)
        for tag in range(1, 51):
            acks.ack(tag)
        await _settle_all(acks)
        return channel

    channel = asyncio.run(scenario())
    assert channel.frames == [("ack", 50, True)]
    assert channel.unsettled == set()


def test_a_slow_delivery_does_not_hold_back_the_acks_behind_it():
    async def scenario():
        channel = ModelChannel()
        acks = ChannelAcks(channel, asyncio.get_running_loop())
        for tag in (1, 2, 3, 4):
            channel.deliver(tag)
            acks.received(tag)
        for tag in (2, 3, 4):
            acks.ack(tag)
        await _settle_all(acks)
        behind = list(channel.frames)
        acks.ack(1)
        await _settle_all(acks)
        return channel, behind

    channel, behind = asyncio.run(scenario())
    # Sent at once, one by one (a multiple ack for 4 would also settle the slow 1).
    assert behind == [("ack", 2, False), ("ack", 3, False), ("ack", 4, False)]
    # The slow one last: a multiple ack for its own tag, never for 4 (settled already).
    assert channel.frames[3:] == [("ack", 1, True)]
    assert channel.unsettled == set()


def test_random_orders_and_fates_settle_every_tag_exactly_once():
    async def scenario(seed):
        rng = random.Random(seed)
        channel = ModelChannel()
        acks = ChannelAcks(channel, asyncio.get_running_loop())
        fates = {}
        next_tag, handling = 1, []
        for _ in range(400):
            if len(handling) < 20 and rng.random() < 0.6:  # the broker delivers (prefetch 20)
                channel.deliver(next_tag)
                acks.received(next_tag)
                handling.append(next_tag)
                next_tag += 1
            elif handling:  # a handler finishes, in any order
                tag = handling.pop(rng.randrange(len(handling)))
                fate = rng.choice(["ack"] * 8 + ["reject", "requeue"])
                fates[tag] = fate
                if fate == "ack":
                    acks.ack(tag)
                else:
                    await acks.nack(tag, requeue=fate == "requeue")
            if rng.random() < 0.3:
                await asyncio.sleep(0)  # a loop pass: the batch goes out
        for tag in handling:
            fates[tag] = "ack"
            acks.ack(tag)
        await _settle_all(acks)
        return channel, fates

    for seed in range(30):
        channel, fates = asyncio.run(scenario(seed))
        assert channel.unsettled == set(), seed
        assert channel.settled == fates, seed
        acked = sum(1 for fate in fates.values() if fate == "ack")
        ack_frames = sum(1 for frame in channel.frames if frame[0] == "ack")
        assert ack_frames < acked, seed  # batched at least somewhere in every run


def test_an_ack_is_decided_once():
    async def scenario():
        channel = ModelChannel()
        acks = ChannelAcks(channel, asyncio.get_running_loop())
        channel.deliver(1)
        acks.received(1)
        acks.ack(1)
        acks.ack(1)  # a second decision for the same delivery sends nothing more
        await _settle_all(acks)
        assert acks.unsettled == 0
        return channel.frames

    assert asyncio.run(scenario()) == [("ack", 1, True)]


# -- against RabbitMQ ----------------------------------------------------------------------


def test_handlers_finishing_out_of_order_settle_every_message_on_one_channel(
    rabbitmq, amqp_queue, caplog
):
    """Random handler times and fates over 600 messages: nothing redelivered, nothing lost.

    A batched ack naming a tag the broker no longer holds would close the channel: the
    consumer would reconnect and the broker would redeliver what was in flight.
    """
    rng = random.Random(7)
    fates = {f"m-{i}": rng.choice(["ack"] * 18 + ["reject", "requeue"]) for i in range(600)}
    seen = []

    async def handler(message):
        body = message.body.decode()
        seen.append((body, message.redelivered))
        await asyncio.sleep(rng.random() * 0.01)
        if message.redelivered:
            return  # a requeued one is acked the second time
        if fates[body] == "reject":
            raise Reject()
        if fates[body] == "requeue":
            raise Requeue()

    async def scenario():
        config = consumer_config(rabbitmq, amqp_queue, concurrency=20)
        consumer = Consumer(config, handler, "tests.handle")
        await asyncio.wait_for(consumer.start(), 30)
        await publish_many(amqp_queue, list(fates))
        requeued = sum(1 for fate in fates.values() if fate == "requeue")
        await wait_until(lambda: len(seen) == 600 + requeued, 60, "every delivery handled")
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        assert consumer.consuming
        assert await consumer.drain(10)
        consumer.close()
        return await drain_queue(amqp_queue), await drain_queue(f"{amqp_queue}.dlq")

    with caplog.at_level(logging.INFO, logger="hurricane_runtime.amqp"):
        left, dead = asyncio.run(scenario())
    assert "stopped consuming" not in caplog.text
    assert "could not" not in caplog.text
    assert left == []
    assert sorted(dead) == sorted(b.encode() for b, fate in fates.items() if fate == "reject")
    redelivered = sorted(body for body, again in seen if again)
    assert redelivered == sorted(b for b, fate in fates.items() if fate == "requeue")


def test_a_thousand_quick_messages_take_far_fewer_ack_frames(rabbitmq, amqp_queue):
    messages = 1000
    handled = []

    async def handler(message):
        handled.append(message.body)

    async def scenario(proxy):
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        config = consumer_config(url, amqp_queue, concurrency=50)
        consumer = Consumer(config, handler, "tests.handle")
        await asyncio.wait_for(consumer.start(), 30)
        await wait_until(lambda: proxy.upstream_bytes > 0, 5, "the consumer talking")
        before = proxy.upstream_bytes
        await publish_many(amqp_queue, [f"m-{i}" for i in range(messages)])
        await wait_until(lambda: len(handled) == messages, 60, "every message handled")
        await wait_until(lambda: consumer.in_process == 0, 10, "all settled")
        await asyncio.sleep(0.1)
        sent = proxy.upstream_bytes - before
        assert await consumer.drain(10)
        consumer.close()
        return sent

    with TcpProxy(5672) as proxy:
        sent = asyncio.run(scenario(proxy))
    assert asyncio.run(drain_queue(amqp_queue)) == []
    # One frame per message would be 21,000 bytes, plus a few hundred for the passive declares
    # of the readiness verification; batched, about a third of that was measured here.
    assert sent < messages * ACK_FRAME_BYTES / 2, f"{sent} bytes to the broker"
