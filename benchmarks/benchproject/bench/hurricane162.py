"""The consume benchmark's handlers for django-hurricane 1.6.2 (``manage.py consume HANDLER``).

Imported only in the environment of django-hurricane 1.6.2 (its ``hurricane`` package; it needs
prometheus-client < 0.18, so it cannot share an environment with ``hurricane_runtime``), with
``benchproject.settings_hurricane162``. Its handlers are pika callbacks on the IOLoop: a
subclass of ``TopicHandler`` with ``on_message``. Its consumer declares a plain classic queue
and binds it to a topic exchange; here the queue is the one the harness declared already
(passive declare), so all consumers read the same durable quorum queue. Its prefetch is fixed
at 1; ``$BENCH_PREFETCH`` sets it as for the other consumers.

The echo handler republishes persistent and mandatory with a publisher confirm on its own
channel and acks the delivery once the broker confirmed the reply, as the others do.
"""

import functools
import os

from hurricane.amqp.basehandler import TopicHandler
from pika import BasicProperties

from bench.handlers import INSERTED, count_one
from bench.models import Item


class _BenchHandler(TopicHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prefetch_count = int(os.environ.get("BENCH_PREFETCH", "1"))

    def setup_queue(self, queue_name: str) -> None:
        callback = functools.partial(self.on_queue_declareok, userdata=queue_name)
        self._channel.queue_declare(queue=queue_name, passive=True, callback=callback)


class Noop(_BenchHandler):
    def on_message(self, channel, deliver, properties, body) -> None:
        count_one()
        channel.basic_ack(deliver.delivery_tag)


class Insert(_BenchHandler):
    def on_message(self, channel, deliver, properties, body) -> None:
        Item.objects.create(name=body.decode()[:100], price=INSERTED)
        count_one()
        channel.basic_ack(deliver.delivery_tag)


class Echo(_BenchHandler):
    """Republish to ``reply_to`` (persistent, confirmed), then ack the delivery."""

    def on_channel_open(self, channel) -> None:
        self._published = 0
        self._unconfirmed: dict[int, int] = {}  # publish sequence number -> delivery tag
        channel.confirm_delivery(self._on_confirm)
        super().on_channel_open(channel)

    def on_message(self, channel, deliver, properties, body) -> None:
        channel.basic_publish(
            "",
            properties.reply_to,
            body,
            BasicProperties(delivery_mode=2),
            mandatory=True,
        )
        self._published += 1
        self._unconfirmed[self._published] = deliver.delivery_tag

    def _on_confirm(self, frame) -> None:
        confirmed = frame.method.delivery_tag
        numbers = [n for n in self._unconfirmed if n <= confirmed] if frame.method.multiple else []
        for number in numbers or [confirmed]:
            tag = self._unconfirmed.pop(number, None)
            if tag is not None:
                self._channel.basic_ack(tag)
