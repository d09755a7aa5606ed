"""The queue a consumer reads, declared durably and idempotently on every (re)connect.

Default shape (``queue_type`` quorum):

    exchange (optional, durable) --routing keys--> QUEUE (durable quorum queue,
        x-delivery-limit, dead-lettered to the DLX with the queue's name as routing key)
    QUEUE.dlx (durable direct exchange) --QUEUE--> QUEUE.dlq (durable quorum queue)

Quorum queues because RabbitMQ 4 refuses transient non-exclusive queues and because only they
bound redeliveries (``x-delivery-limit``): a message that crashes its consumer over and over
ends in the dead-letter queue instead of looping. The dead-letter routing key is the queue's
name, so one dead-letter exchange can serve several queues, each with its own ``.dlq``.

Declaring is idempotent: the same arguments again are a no-op. Different arguments on an
existing queue make the broker answer PRECONDITION_FAILED and close the channel; that becomes
one ``TopologyError`` naming the queue and the argument, because no reconnect can fix it.
"""

import re
from dataclasses import dataclass

import aiormq.exceptions

QUORUM = "quorum"
CLASSIC = "classic"
QUEUE_TYPES = (QUORUM, CLASSIC)
EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for (?P<what>\w+) '(?P<name>[^']*)' in vhost "
    r"'[^']*': received (?P<received>.+?) but current is (?P<current>.+)$"
)


class TopologyError(RuntimeError):
    """The broker refused the declared topology; retrying cannot help."""


@dataclass(frozen=True)
class Topology:
    queue: str
    queue_type: str = QUORUM
    delivery_limit: int = 20
    dead_letter_exchange: str | None = None  # None: derived, QUEUE.dlx; "": no dead-lettering
    exchange: str = ""  # "": the default exchange, which routes by queue name
    exchange_type: str = "direct"
    routing_keys: tuple[str, ...] = ()

    @property
    def dlx(self) -> str:
        if self.dead_letter_exchange is None:
            return f"{self.queue}.dlx"
        return self.dead_letter_exchange

    @property
    def dead_letter_queue(self) -> str | None:
        return f"{self.queue}.dlq" if self.dlx else None

    def queue_arguments(self) -> dict:
        arguments = {"x-queue-type": self.queue_type}
        if self.queue_type == QUORUM:
            arguments["x-delivery-limit"] = self.delivery_limit
        if self.dlx:
            arguments["x-dead-letter-exchange"] = self.dlx
            arguments["x-dead-letter-routing-key"] = self.queue
        return arguments

    def bindings(self) -> tuple[str, ...]:
        """Routing keys binding the queue to ``exchange`` (default: the queue's name)."""
        if not self.exchange:
            return ()
        return self.routing_keys or (self.queue,)

    async def declare(self, channel):
        """Declare everything on ``channel`` (aio-pika); return the consumer's queue.

        ``channel`` is closed by the broker when a declaration is refused; the caller
        opens a new one for the next attempt.
        """
        try:
            if self.dlx:
                dlx = await channel.declare_exchange(self.dlx, "direct", durable=True)
                dlq = await channel.declare_queue(
                    self.dead_letter_queue,
                    durable=True,
                    arguments={"x-queue-type": self.queue_type},
                )
                await dlq.bind(dlx, routing_key=self.queue)
            queue = await channel.declare_queue(
                self.queue, durable=True, arguments=self.queue_arguments()
            )
            if self.exchange:
                exchange = await channel.declare_exchange(
                    self.exchange, self.exchange_type, durable=True
                )
                for key in self.bindings():
                    await queue.bind(exchange, routing_key=key)
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            raise TopologyError(explain_precondition(error)) from None
        except aiormq.exceptions.ChannelAccessRefused as error:
            raise TopologyError(f"the broker refused access: {_reply_text(error)}") from None
        return queue


def _reply_text(error: BaseException) -> str:
    text = str(error.args[0]) if error.args else str(error)
    return text.removeprefix("PRECONDITION_FAILED - ").removeprefix("ACCESS_REFUSED - ")


def explain_precondition(error: BaseException) -> str:
    """One line naming the queue or exchange and the argument that differs."""
    text = _reply_text(error)
    match = _INEQUIVALENT.search(text)
    if match is None:
        return f"the broker refused the topology: {text}"
    return (
        f"{match['what']} {match['name']!r} already exists with a different {match['arg']!r} "
        f"(declared: {_value(match['received'])}; existing: {_value(match['current'])}); "
        f"delete the {match['what']} or declare it with the same arguments"
    )


def _value(text: str) -> str:
    """``the value 'quorum' of type 'longstr'`` -> ``'quorum'``; ``none`` -> ``none``."""
    match = re.match(r"the value (?P<value>.+?) of type '[^']*'$", text.strip())
    return match["value"] if match else text.strip()
