"""Publishing with publisher confirms, from sync views and from async handlers alike.

``publish(...)`` returns once the broker has confirmed the message (or raises): a view that
returns 201 after it really has handed an order to the broker. ``await apublish(...)`` is the
same for coroutines. Messages are persistent and ``mandatory`` by default, so a message that no
queue would receive raises ``PublishError`` instead of vanishing.

Each event loop gets its own connection (AMQP connections belong to one loop); sync callers
(Django views on worker threads, sync handlers) share one connection on a background thread.
Connections open on first use and reopen after a failure on the next call.

The broker URL: the ``amqp_url`` argument, else the setting or environment variable
``HURRICANE_AMQP_URL``, else ``AMQP_URL`` (the same lookup as ``manage.py consume``).
"""

import asyncio
import atexit
import contextlib
import json
import os
import threading
import weakref

import aio_pika
from aio_pika.exceptions import DeliveryError

DEFAULT_TIMEOUT = 10.0
PERSISTENT = aio_pika.DeliveryMode.PERSISTENT
TRANSIENT = aio_pika.DeliveryMode.NOT_PERSISTENT


class PublishError(RuntimeError):
    """The broker did not confirm the message (nacked, unroutable, or unreachable)."""


def broker_url(amqp_url: str | None = None) -> str:
    if amqp_url:
        return amqp_url
    from django.conf import settings

    url = getattr(settings, "HURRICANE_AMQP_URL", None) or os.environ.get("HURRICANE_AMQP_URL")
    url = url or os.environ.get("AMQP_URL")
    if not url:
        raise PublishError("no broker URL: set HURRICANE_AMQP_URL or AMQP_URL")
    return url


def encode(body) -> tuple[bytes, str | None]:
    """Bytes as they are, text as UTF-8, anything else as JSON; with its content type."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), None
    if isinstance(body, str):
        return body.encode(), "text/plain"
    return json.dumps(body, separators=(",", ":")).encode(), "application/json"


class Publisher:
    """One connection and one confirm channel, used from one event loop."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self._connection = None
        self._channel = None
        self._lock = asyncio.Lock()

    async def _ready_channel(self, timeout: float):
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if self._connection is None or self._connection.is_closed:
                    self._connection = await aio_pika.connect(
                        self.amqp_url,
                        timeout=timeout,
                        client_properties={"connection_name": "hurricane publisher"},
                    )
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            return self._channel

    async def publish(
        self,
        body,
        routing_key: str,
        exchange: str = "",
        *,
        headers: dict | None = None,
        content_type: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        message_id: str | None = None,
        persistent: bool = True,
        mandatory: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        data, guessed_type = encode(body)
        message = aio_pika.Message(
            data,
            headers=headers,
            content_type=content_type or guessed_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            message_id=message_id,
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
        )
        try:
            channel = await self._ready_channel(timeout)
            target = (
                await channel.get_exchange(exchange, ensure=False)
                if exchange
                else channel.default_exchange
            )
            await target.publish(message, routing_key, mandatory=mandatory, timeout=timeout)
        except DeliveryError as error:
            raise PublishError(
                f"the broker did not accept the message for {exchange or '(default)'!r} / "
                f"{routing_key!r}: {_returned(error)}"
            ) from None
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPException) as error:
            self._channel = None
            raise PublishError(f"could not publish: {error or type(error).__name__}") from error

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            await connection.close()


def _returned(error: DeliveryError) -> str:
    frame = getattr(error, "frame", None)
    text = getattr(frame, "reply_text", None)
    return text or "nacked"


# One publisher per (event loop, URL); dropped with their loop.
_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Publisher]]"
_per_loop = weakref.WeakKeyDictionary()
_background_loop: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _publisher(loop, url: str) -> Publisher:
    publishers = _per_loop.setdefault(loop, {})
    if url not in publishers:
        publishers[url] = Publisher(url)
    return publishers[url]


async def apublish(body, routing_key: str, exchange: str = "", *, amqp_url=None, **options):
    """Publish from a coroutine and await the broker's confirm."""
    loop = asyncio.get_running_loop()
    await _publisher(loop, broker_url(amqp_url)).publish(body, routing_key, exchange, **options)


def publish(body, routing_key: str, exchange: str = "", *, amqp_url=None, **options) -> None:
    """Publish from a thread without a running loop and wait for the broker's confirm."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise PublishError("publish() blocks: on an event loop use 'await apublish(...)'")
    url = broker_url(amqp_url)
    loop = _background()
    timeout = options.get("timeout", DEFAULT_TIMEOUT)
    future = asyncio.run_coroutine_threadsafe(
        _publisher(loop, url).publish(body, routing_key, exchange, **options), loop
    )
    try:
        future.result(timeout=2 * timeout)
    except TimeoutError:
        future.cancel()
        raise PublishError(f"no confirm from the broker within {2 * timeout:g}s") from None


def _background() -> asyncio.AbstractEventLoop:
    """The loop of sync publishers: one daemon thread, started on first use."""
    global _background_loop
    with _background_lock:
        if _background_loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="hurricane-publisher", daemon=True
            )
            thread.start()
            _background_loop = loop
            atexit.register(_close_background, loop)
        return _background_loop


def _close_background(loop) -> None:
    """At exit: close the sync publishers' connections politely (the broker logs no error)."""
    future = asyncio.run_coroutine_threadsafe(close_publishers(), loop)
    with contextlib.suppress(Exception):
        future.result(timeout=2)


async def close_publishers() -> None:
    """Close this loop's publisher connections (the consumer calls it while closing)."""
    publishers = _per_loop.pop(asyncio.get_running_loop(), {})
    for publisher in publishers.values():
        with contextlib.suppress(Exception):  # shutting down: nothing left to save
            await publisher.close()
