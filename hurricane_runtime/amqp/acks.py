"""Acknowledgements of one channel, sent in as few frames as their order allows.

A consumer with a prefetch of 50 finishes its messages mostly in delivery order, often many in
one pass of the event loop. One ``Basic.Ack`` frame per message (and a write and a future per
frame) was a large share of the loop's time per message, and the probes answered from the same
loop waited behind it. So acks are decided per message but sent once per loop pass: the longest
run of settled deliveries at the head of the channel's window goes as one ``multiple`` ack for
its highest tag, and an ack behind a delivery still being handled goes alone at once, so one
slow message never holds the rest of the window (nor the broker's next deliveries) back.

RabbitMQ refuses (and closes the channel on) a ``multiple`` ack whose tag it no longer holds, so
the tag of a batched ack is always one that nothing has settled yet. Rejects and requeues are
rare and go out alone, at once, in order with the acks (one writer queue per connection).

An ack that was decided but not sent when the channel died is lost with the channel; the broker
redelivers that message, as it does every unacked message of a closed channel: at least once.
"""

import asyncio
import collections
import logging

logger = logging.getLogger("hurricane_runtime.amqp")

# States of a delivery in the window (its tag is in ``_order`` until the window passes it).
_HANDLING = 0  # not settled yet
_ACK_DECIDED = 1  # to be acked by the next flush
_SETTLED = 2  # acked, rejected or requeued on its own: nothing left to send


class ChannelAcks:
    """The unsettled deliveries of one aiormq channel, and the frames that settle them."""

    def __init__(self, channel, loop: asyncio.AbstractEventLoop):
        self.channel = channel
        self._loop = loop
        self._order: collections.deque[int] = collections.deque()
        self._states: dict[int, int] = {}
        self._decided: list[int] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Task] = set()

    def received(self, tag: int) -> None:
        """A delivery arrived (tags grow with each delivery on a channel)."""
        self._order.append(tag)
        self._states[tag] = _HANDLING

    def ack(self, tag: int) -> None:
        """Ack ``tag`` in this loop pass's batch."""
        if self._states.get(tag) != _HANDLING:
            return
        self._states[tag] = _ACK_DECIDED
        self._decided.append(tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    async def nack(self, tag: int, requeue: bool) -> None:
        """Reject (``requeue=False``: dead-letter) or requeue ``tag`` now. Raises if gone."""
        self._settled_alone(tag)
        if requeue:
            await self.channel.basic_nack(tag, requeue=True, wait=False)
        else:
            await self.channel.basic_reject(tag, requeue=False)

    async def flush(self) -> None:
        """Send every decided ack now and wait until they are written (drain, close)."""
        self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    @property
    def unsettled(self) -> int:
        return len(self._states)

    def _settled_alone(self, tag: int) -> None:
        if tag in self._states:
            self._states[tag] = _SETTLED

    def _flush(self) -> None:
        self._flush_scheduled = False
        order, states = self._order, self._states
        batch_tag = None
        while order and states[order[0]] != _HANDLING:
            tag = order.popleft()
            if states.pop(tag) == _ACK_DECIDED:
                batch_tag = tag
        frames = []
        if batch_tag is not None:
            frames.append((batch_tag, True))
        for tag in self._decided:
            if states.get(tag) == _ACK_DECIDED:  # behind a delivery still being handled
                states[tag] = _SETTLED
                frames.append((tag, False))
        self._decided.clear()
        if frames:
            task = self._loop.create_task(self._send(frames))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, frames: list[tuple[int, bool]]) -> None:
        channel = self.channel
        try:
            for tag, multiple in frames:
                await channel.basic_ack(tag, multiple=multiple, wait=False)
        except Exception as error:  # the channel is gone: the broker redelivers what it held
            logger.info("could not ack a message (%s); the broker will redeliver it", error)
