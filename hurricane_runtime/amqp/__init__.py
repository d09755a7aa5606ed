"""``manage.py consume``: an AMQP consumer that Kubernetes can trust, and a publish helper.

Modules, one job each:

- ``outcomes``: what a handler may raise to decide a message's fate, and the ack policies;
- ``message``: the message a handler receives (plain data, safe to use on any thread);
- ``handlers``: loading the handler from its dotted path and running it (sync on a bounded
  pool of threads with Django's connection housekeeping, async on the loop);
- ``topology``: the durable quorum queue, its dead-letter exchange and queue, and bindings;
- ``supervisor``: the connection's states, reconnects with backoff, readiness and drain;
- ``metrics``: consumer metrics on the same registry as every other hurricane metric;
- ``publisher``: publishing with publisher confirms from sync views and async handlers.

Needs the ``amqp`` extra (aio-pika). The names below are the API handlers import.
"""

from .message import Message
from .outcomes import Ack, Reject, Requeue

__all__ = ["Ack", "Message", "PublishError", "Reject", "Requeue", "apublish", "publish"]


def publish(*args, **kwargs):
    """Publish and wait for the broker's confirm, from a thread (a view, a sync handler)."""
    from .publisher import publish as _publish

    return _publish(*args, **kwargs)


async def apublish(*args, **kwargs):
    """Publish and await the broker's confirm, from a coroutine (an async handler)."""
    from .publisher import apublish as _apublish

    return await _apublish(*args, **kwargs)


def __getattr__(name):
    if name == "PublishError":  # imported on use: only publishing needs aio-pika loaded
        from .publisher import PublishError

        return PublishError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
