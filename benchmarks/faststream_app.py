"""The FastStream 0.7 consumer of the consume benchmark: the same handlers, the same broker.

    python benchmarks/faststream_app.py SCENARIO QUEUE PREFETCH ARGUMENTS_JSON

Run by ``benchmarks/consume.py`` with the bench project's environment (for ``insert``). The
queue is declared with the same arguments as ``manage.py consume`` declares it.
"""

import asyncio
import json
import os
import sys

import django

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from bench.handlers import INSERTED, compute, count_one  # noqa: E402
from bench.models import Item  # noqa: E402
from faststream import FastStream  # noqa: E402
from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitMessage, RabbitQueue  # noqa: E402


def build(scenario: str, queue_name: str, prefetch: int, arguments: dict) -> FastStream:
    broker = RabbitBroker(
        os.environ["BENCH_AMQP_URL"], default_channel=Channel(prefetch_count=prefetch)
    )
    arguments = {key: value for key, value in arguments.items() if key != "x-queue-type"}
    queue = RabbitQueue(queue_name, durable=True, queue_type=QueueType.QUORUM, arguments=arguments)

    if scenario == "noop":

        @broker.subscriber(queue)
        async def noop(message: RabbitMessage):
            count_one()

    elif scenario == "compute":

        @broker.subscriber(queue)
        async def busy(message: RabbitMessage):
            await compute(message)

    elif scenario == "echo":
        # ``no_reply``: FastStream would otherwise also publish the handler's return value (an
        # empty body) to ``reply_to``, a second confirmed publish per message that ``consume``
        # does not make.
        @broker.subscriber(queue, no_reply=True)
        async def echo(message: RabbitMessage):
            # Persistent, as ``apublish`` publishes by default: the same work for the broker.
            await broker.publish(message.body, queue=message.reply_to, persist=True)

    else:
        create = sync_to_async(Item.objects.create)

        @broker.subscriber(queue)
        async def insert(message: RabbitMessage):
            await create(name=message.body.decode()[:100], price=INSERTED)
            count_one()

    return FastStream(broker)


if __name__ == "__main__":
    scenario, queue_name, prefetch, arguments = sys.argv[1:5]
    asyncio.run(build(scenario, queue_name, int(prefetch), json.loads(arguments)).run())
