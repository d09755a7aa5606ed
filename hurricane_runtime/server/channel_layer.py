"""Readiness of the Channels layer: a websocket pod that cannot reach Redis is not ready.

Group messages (``group_send``) travel through the channel layer; without it a websocket pod
accepts sockets that never receive a broadcast. So when websockets are on and the project has
a channel layer, a background task asks the layer every ``check_interval`` and readiness shows
the last answer. Liveness never depends on it: restarting the pod does not bring Redis back.

For ``channels_redis``' layer the question is a PING to every Redis of its ring; for any other
layer a message sent to a fresh channel of its own and received back.
"""

import asyncio
import logging

logger = logging.getLogger("hurricane_runtime")


def project_channel_layer():
    """The default channel layer, or None when Channels or ``CHANNEL_LAYERS`` is missing."""
    try:
        from channels.layers import get_channel_layer
    except ImportError:
        return None
    return get_channel_layer()


async def ask_layer(layer, channel: str | None = None) -> str | None:
    """Raise unless ``layer`` works right now; return the channel to reuse next time.

    One channel for all the checks of a process: a layer that subscribes per channel
    (``channels_redis.pubsub``) would otherwise collect a subscription per check.
    """
    connection = getattr(layer, "connection", None)
    ring_size = getattr(layer, "ring_size", None)
    if callable(connection) and isinstance(ring_size, int):  # channels_redis RedisChannelLayer
        for index in range(ring_size):
            await connection(index).ping()
        return None
    if channel is None:
        channel = await layer.new_channel("hurricane.health.")
    await layer.send(channel, {"type": "hurricane.health"})
    await layer.receive(channel)
    return channel


class ChannelLayerHealth:
    """A health source: readiness fails while the channel layer does not answer."""

    def __init__(self, layer, interval: float, timeout: float):
        self.layer = layer
        self.interval = interval
        self.timeout = timeout
        self.problem: str | None = "channel layer not checked yet"
        self._task: asyncio.Task | None = None
        self._channel: str | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def readiness_reasons(self) -> list[str]:
        return [self.problem] if self.problem else []

    async def check(self) -> None:
        try:
            self._channel = await asyncio.wait_for(
                ask_layer(self.layer, self._channel), self.timeout
            )
        except Exception as error:
            self._channel = None  # a fresh channel next time: the old one may be lost
            problem = f"channel layer unreachable: {type(error).__name__}: {error}".rstrip(": ")
            if problem != self.problem:
                logger.warning("%s", problem)
            self.problem = problem
        else:
            if self.problem:
                logger.info("channel layer reachable")
            self.problem = None

    async def _watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)
