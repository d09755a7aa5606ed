"""The consumer's connection, its states, and what the probes learn from them.

One task supervises the broker connection for the life of the process:

    connecting --Consume-Ok--> consuming --(connection or channel closed, consumer cancelled
        ^                                    by the broker, verification failed)--> waiting
        +----------- backoff: exponential, full jitter, capped <-----------------------+

Readiness is 200 only in "consuming", and "consuming" is re-verified every
``verify_interval``: a passive declare of the queue on the consumer's own channel must answer
in time and show at least one consumer. A broker-side cancel (queue deleted, failover) or a
closed connection is reported by the broker at once; a silent partition is caught by the
verification going stale. Either way readiness turns 503 within a second and the supervisor
reconnects, re-declares the topology and consumes again.

Liveness never asks the broker. Its only consumer reason is the last resort: disconnected for
longer than ``disconnected_timeout``, when restarting the pod is all that is left to try.

The probe port answers on a thread of its own (``probes_on_thread``): this loop runs the
project's async handlers, and a probe must neither wait for them nor hang when one blocks the
loop. The loop's heartbeat (``loop_timeout``) tells liveness when that happens.

Drain: cancel the consumer, hand every delivered message that no handler started back to the
broker at once, let running handlers finish within the drain timeout, requeue the rest, close.
"""

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import threading
import time

import aio_pika
import aiormq.exceptions

from ..state import StartupError
from . import outcomes
from .acks import ChannelAcks
from .handlers import HandlerRunner
from .message import Message
from .metrics import ACKED, ERROR, NACKED, REJECTED, ConsumerMetrics
from .publisher import close_publishers
from .topology import Topology, TopologyError

logger = logging.getLogger("hurricane_runtime.amqp")

# First reconnect delay bound; each failure doubles it up to ``reconnect_max_delay``, and the
# actual delay is drawn uniformly below the bound ("full jitter"), so that many pods that lost
# the same broker do not come back in lock-step.
RECONNECT_BASE_DELAY = 0.25
# Readiness turns 503 when the last successful verification is older than this many intervals
# (0.8 s with the default 0.2 s interval): a partition that neither resets nor closes the
# connection is visible within a second, while one slow answer on a busy broker is not.
STALE_INTERVALS = 4
# A verification unanswered for this many intervals means the path to the broker is silently
# gone: give the connection up and reconnect.
STALE_INTERVALS_BEFORE_RECONNECT = 25

CONNECTION_ERRORS = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
)


# Errors that no retry can fix while starting: fail start-up at once with the broker's words.
# Once consuming, the same errors (someone redeclared the queue, rotated the password) are
# retried with backoff like any outage, with readiness 503 saying why.
FATAL_AT_START = (TopologyError, aiormq.exceptions.ProbableAuthenticationError)


def backoff_delay(attempt: int, cap: float, base: float = RECONNECT_BASE_DELAY) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 32)))


class _Broken(Exception):
    """The consumer stopped consuming; the message says why (for logs and probes)."""


class _Delivery:
    """One delivered message, from arrival until it is acked, rejected or handed back.

    ``claim`` (a handler is about to start it) and ``hand_back`` (the drain returns it) race
    across threads; the lock makes exactly one of them win.
    """

    WAITING, RUNNING, HANDED_BACK, ABANDONED = "waiting", "running", "handed back", "abandoned"

    __slots__ = ("acks", "tag", "state", "_lock")

    def __init__(self, acks: ChannelAcks, tag: int):
        self.acks = acks
        self.tag = tag
        self.state = self.WAITING
        self._lock = threading.Lock()

    def claim(self) -> bool:
        with self._lock:
            if self.state == self.WAITING:
                self.state = self.RUNNING
                return True
            return False

    def hand_back(self) -> bool:
        with self._lock:
            if self.state == self.WAITING:
                self.state = self.HANDED_BACK
                return True
            return False

    def abandon(self) -> bool:
        with self._lock:
            if self.state == self.RUNNING:
                self.state = self.ABANDONED
                return True
            return False


class Consumer:
    """The ``consume`` workload: one handler consuming one queue, supervised."""

    name = "consumer"
    # Answer probes from ``probe_thread.ProbePortThread`` (see the module docstring).
    probes_on_thread = True

    def __init__(self, config, handler, handler_path: str, state=None, registry=None):
        self.config = config
        self.state = state
        self.topology = Topology(
            queue=config.queue,
            queue_type=config.queue_type,
            delivery_limit=config.delivery_limit,
            dead_letter_exchange=config.dead_letter_exchange,
            exchange=config.exchange,
            exchange_type=config.exchange_type,
            routing_keys=tuple(config.routing_key),
        )
        self.handler_path = handler_path
        self.runner = HandlerRunner(handler, handler_path, threads=config.concurrency)
        self.metrics = None
        if registry is not None:
            self.add_metrics(registry)
        self.connection_name = (
            f"hurricane consume {config.queue} {socket.gethostname()} {os.getpid()}"
        )
        self.consuming = False
        self.ever_consumed = False
        self.draining = False
        self.problem = "not connected yet"
        self.verified_at = 0.0
        self.disconnected_since = time.monotonic()
        self.attempts = 0
        self._deliveries: set[_Delivery] = set()
        self._idle = asyncio.Event()
        self._connection = None
        self._channel = None
        self._acks: ChannelAcks | None = None
        self._consumer_tag = None
        self._broken: asyncio.Event | None = None
        self._first_consume: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._cancel_task: asyncio.Task | None = None
        self._stop = asyncio.Event()

    # -- workload interface ----------------------------------------------------------------

    def add_metrics(self, registry) -> None:
        """Put the consumer metrics on ``registry`` (the process's metrics endpoint)."""
        self.metrics = ConsumerMetrics(registry, self, handler=self.topology.queue)

    def prepare(self, asyncio_loop) -> None:
        """Nothing blocking to build: the handler is imported and the pool made already."""

    async def start(self) -> None:
        """Supervise the connection; return at the first Consume-Ok.

        A broker that cannot be reached keeps start-up waiting (and retrying); a topology the
        broker refuses fails start-up at once.
        """
        loop = asyncio.get_running_loop()
        self.runner.start(loop)
        self._first_consume = loop.create_future()
        self._task = loop.create_task(self._supervise(), name="hurricane-amqp-supervisor")
        if self.state is not None:
            self.state.startup_step = f"connecting to the broker for {self.topology.queue}"
        try:
            await asyncio.shield(self._first_consume)
        except FATAL_AT_START as error:
            raise StartupError(str(error)) from None

    def stop_accepting(self) -> None:
        """Stop taking new messages: cancel the consumer (without waiting for Cancel-Ok)."""
        if self.draining:
            return
        self.draining = True
        self.consuming = False
        self.problem = "draining"
        self._stop.set()
        self._cancel_task = asyncio.get_running_loop().create_task(self._cancel_consumer())

    async def drain(self, timeout: float) -> bool:
        """Hand unstarted messages back, wait for running handlers, requeue what is left."""
        self.stop_accepting()
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):  # timed out, or the channel is gone already
            await asyncio.wait_for(asyncio.shield(self._cancel_task), timeout)
        await self._hand_back_unstarted()
        if self._deliveries:
            self._idle.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - time.monotonic()))
        abandoned = [d for d in list(self._deliveries) if d.abandon()]
        for delivery in abandoned:
            await self._settle(delivery, outcomes.REQUEUE, count=False)
        if self._acks is not None:
            await self._acks.flush()  # the acks decided in this loop pass, before the close
        if abandoned:
            logger.warning(
                "%d handlers still running after the %gs drain timeout: their messages "
                "were requeued",
                len(abandoned),
                timeout,
            )
        await self._close_connection()
        await close_publishers()  # what async handlers published through this loop
        # Every message is settled or back in the queue (a requeue that failed with the channel
        # is done by the broker when the connection closes): nothing is lost, so the drain ends
        # well (exit 0) even when handlers outlived the drain timeout; the warning above says so.
        return True

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.runner.close()

    def describe(self) -> str:
        mode = "async handler" if self.runner.is_async else f"{self.runner.threads} threads"
        topology = self.topology
        return (
            f"consuming {topology.queue} ({topology.queue_type}, delivery limit "
            f"{topology.delivery_limit}, dead letters to {topology.dlx or 'nowhere'}) with "
            f"{self.handler_path} ({mode}, prefetch {self.config.concurrency})"
        )

    # -- health sources --------------------------------------------------------------------

    def startup_reasons(self) -> list[str]:
        if self.ever_consumed:
            return []
        return [f"waiting for the broker: {self.problem}"]

    def readiness_reasons(self) -> list[str]:
        if not self.consuming:
            return [f"not consuming from {self.topology.queue}: {self.problem}"]
        stale = time.monotonic() - self.verified_at
        if stale > self.stale_after:
            return [f"consumer on {self.topology.queue} not verified for {stale:.1f}s"]
        return []

    def liveness_reasons(self) -> list[str]:
        if not self.runner.alive():
            return ["a handler thread died"]
        bound = self.config.disconnected_timeout
        if not bound or not self.ever_consumed or self.consuming or self.draining:
            return []
        down = time.monotonic() - self.disconnected_since
        if down > bound:
            return [f"not consuming for {down:.0f}s (more than {bound:g}s): {self.problem}"]
        return []

    @property
    def stale_after(self) -> float:
        """Age of the last verification past which readiness reports 503."""
        return STALE_INTERVALS * self.config.verify_interval

    @property
    def in_process(self) -> int:
        return len(self._deliveries)

    @property
    def consumers_active(self) -> int:
        return 1 if self.consuming else 0

    # -- the supervising task --------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                await self._connect_and_consume()
                self.attempts = 0
                await self._watch()
            except FATAL_AT_START as error:
                self._lost(_describe_error(error))
                if not self.ever_consumed:
                    await self._drop_connection()
                    self._fail_start(error)
                    return
                logger.error("%s", error)
            except (_Broken, *CONNECTION_ERRORS) as error:
                self._lost(_describe_error(error))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bug or an unexpected client state: keep supervising
                logger.exception("consumer supervisor error")
                self._lost(_describe_error(error))
            if self._stop.is_set():
                break
            await self._drop_connection()
            delay = backoff_delay(self.attempts, self.config.reconnect_max_delay)
            self.attempts += 1
            self.problem += f" (retrying in {delay:.1f}s)"
            if self.state is not None and not self.ever_consumed:
                self.state.startup_step = f"waiting for the broker: {self.problem}"
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _connect_and_consume(self) -> None:
        config = self.config
        self._broken = asyncio.Event()
        self._connection = await aio_pika.connect(
            config.amqp_url,
            timeout=config.connect_timeout,
            client_properties={"connection_name": self.connection_name},
        )
        self._connection.close_callbacks.add(self._on_connection_closed)
        channel = await self._connection.channel(publisher_confirms=False)
        channel.close_callbacks.add(self._on_channel_closed)
        self._channel = channel
        # Per-channel QoS: RabbitMQ 4 denies global QoS, and prefetch is the concurrency.
        await channel.set_qos(prefetch_count=config.concurrency, global_=False)
        queue = await self.topology.declare(channel)
        underlay = await channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._on_cancelled_by_broker)
        if self._stop.is_set():
            return
        # Consume on aiormq's channel itself: aio-pika's consumer adds a task and a message
        # object per delivery, and acks one frame at a time (see acks.py).
        acks = ChannelAcks(underlay, asyncio.get_running_loop())
        self._acks = acks
        consume_ok = await underlay.basic_consume(
            queue.name, functools.partial(self._on_delivered, acks)
        )
        self._consumer_tag = consume_ok.consumer_tag
        self.consuming = True
        self.ever_consumed = True
        self.verified_at = time.monotonic()
        self.problem = ""
        if not self._first_consume.done():
            self._first_consume.set_result(None)
        logger.info("consuming from %s", self.topology.queue)

    async def _watch(self) -> None:
        """Verify the consumer every interval until something breaks (then raise _Broken)."""
        interval = self.config.verify_interval
        underlay = await self._channel.get_underlay_channel()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._broken.wait(), interval)
            if self._broken.is_set():
                raise _Broken(self.problem)
            if self._stop.is_set():
                return
            try:
                # Slow answers only age the verification (readiness turns 503 past
                # ``stale_after``); the connection is given up once it is clearly gone.
                declared = await asyncio.wait_for(
                    underlay.queue_declare(self.topology.queue, passive=True),
                    STALE_INTERVALS_BEFORE_RECONNECT * interval,
                )
            except TimeoutError:
                stale = time.monotonic() - self.verified_at
                raise _Broken(f"the broker has not answered for {stale:.1f}s") from None
            if self._broken.is_set():
                raise _Broken(self.problem)
            if not declared.consumer_count:
                raise _Broken(f"the broker lists no consumer on {self.topology.queue}")
            self.verified_at = time.monotonic()

    def _fail_start(self, error: BaseException) -> None:
        if self._first_consume is not None and not self._first_consume.done():
            self._first_consume.set_exception(error)

    def _lost(self, why: str) -> None:
        if self.consuming:
            logger.warning("stopped consuming from %s: %s", self.topology.queue, why)
            self.disconnected_since = time.monotonic()
        self.consuming = False
        self._consumer_tag = None
        self.problem = why or "connection lost"

    def _mark_broken(self, why: str) -> None:
        if self._broken is not None and not self._broken.is_set():
            self.problem = why
            self.consuming = False  # readiness reads this at once, before the watcher wakes
            self._broken.set()

    def _on_connection_closed(self, _sender, error) -> None:
        self._mark_broken(f"connection closed: {_describe_error(error)}")

    def _on_channel_closed(self, _sender, error) -> None:
        self._mark_broken(f"channel closed: {_describe_error(error)}")

    def _on_cancelled_by_broker(self, _frame) -> None:
        self._mark_broken(f"consumer cancelled by the broker (queue {self.topology.queue})")

    async def _drop_connection(self) -> None:
        """Close a broken connection; handlers still running lose their ack (redelivered)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(connection.close(), self.config.connect_timeout)

    async def _cancel_consumer(self) -> None:
        tag, channel = self._consumer_tag, self._channel
        if tag is None or channel is None or channel.is_closed:
            return
        underlay = await channel.get_underlay_channel()
        await underlay.basic_cancel(tag)

    async def _close_connection(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._drop_connection()

    # -- messages --------------------------------------------------------------------------

    async def _on_delivered(self, acks: ChannelAcks, delivered) -> None:
        """aiormq's consumer callback: one task per delivery, on the loop."""
        delivery = _Delivery(acks, delivered.delivery.delivery_tag)
        acks.received(delivery.tag)
        if self.draining:
            await self._nack_quietly(delivery)  # arrived between our Cancel and its Cancel-Ok
            return
        self._deliveries.add(delivery)
        try:
            await self._handle(delivery, Message.from_delivered(delivered))
        finally:
            self._deliveries.discard(delivery)
            if not self._deliveries:
                self._idle.set()

    async def _handle(self, delivery: _Delivery, message: Message) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.received.inc()
            metrics.received_size.observe(len(message.body))
            if message.redelivered:
                metrics.redeliveries.inc()
        policy = self.config.ack_policy
        if policy == outcomes.ACK_FIRST:
            await self._settle(delivery, outcomes.ACK, count=False)
        started = time.perf_counter()
        error = None
        try:
            ran = await self.runner.run(message, delivery.claim)
        except Exception as raised:
            ran, error = True, raised
        if not ran:
            return  # handed back by the drain before a handler started it
        if metrics is not None:
            metrics.duration.observe(time.perf_counter() - started)
        fate = outcomes.decide(error, policy)
        unexpected = error is not None and not isinstance(error, outcomes.Outcome)
        if unexpected:
            logger.error(
                "handler %s failed on a message from %s (%s)",
                self.handler_path,
                self.topology.queue,
                {outcomes.REJECT: "dead-lettered", outcomes.REQUEUE: "requeued"}.get(fate, "acked"),
                exc_info=error,
            )
            if metrics is not None:
                metrics.exception(error)
                metrics.processed[ERROR].inc()
        if policy == outcomes.ACK_FIRST:  # acked on receipt already
            if metrics is not None and not unexpected:
                metrics.processed[ACKED].inc()
            return
        if delivery.state == _Delivery.ABANDONED:
            return  # the drain requeued it already
        await self._settle(delivery, fate, count=not unexpected, message=message)

    async def _settle(self, delivery, fate: str, count: bool = True, message=None) -> None:
        if fate == outcomes.ACK:
            delivery.acks.ack(delivery.tag)  # sent with this loop pass's other acks
        else:
            try:
                await delivery.acks.nack(delivery.tag, requeue=fate == outcomes.REQUEUE)
            except Exception as error:  # the channel is gone: the broker redelivers it
                logger.info(
                    "could not %s a message (%s); the broker will redeliver it", fate, error
                )
                return
        metrics = self.metrics
        if metrics is None:
            return
        if fate == outcomes.REJECT and self.topology.dlx:
            metrics.dead_lettered.inc()
        elif (
            fate == outcomes.REQUEUE
            and message is not None
            and self.topology.queue_type == "quorum"
            and message.delivery_count >= self.topology.delivery_limit
        ):
            metrics.dead_lettered.inc()  # past the limit the broker dead-letters it
        if count:
            status = {outcomes.ACK: ACKED, outcomes.REJECT: REJECTED}.get(fate, NACKED)
            metrics.processed[status].inc()

    async def _hand_back_unstarted(self) -> None:
        waiting = [d for d in list(self._deliveries) if d.hand_back()]
        await asyncio.gather(*(self._nack_quietly(d) for d in waiting))

    async def _nack_quietly(self, delivery: _Delivery) -> None:
        with contextlib.suppress(Exception):  # channel gone: the broker requeues it anyway
            await delivery.acks.nack(delivery.tag, requeue=True)


def _describe_error(error) -> str:
    if error is None:
        return "closed"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]
