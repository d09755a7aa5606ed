"""Message handlers that exercise ``manage.py consume``: ORM writes, slow work, bad paths.

Handlers that record write one line per event to ``$TESTPROJECT_RECORD_FILE`` so that a test
can see, from outside the process, which messages were started and which finished.
"""

import asyncio
import os
import time

from hurricane_runtime.amqp import apublish
from items.models import Item


def _record(event: str, message) -> None:
    path = os.environ.get("TESTPROJECT_RECORD_FILE")
    if path:
        with open(path, "a") as record:
            record.write(f"{event} {message.body.decode()}\n")


def create_item(message):
    """Sync: one ORM insert per message (runs on a worker thread, not on the loop)."""
    Item.objects.create(name=message.text())
    _record("created", message)


async def record(message):
    """Async: record the message; ``fail`` in the body raises."""
    _record("handled", message)
    if b"fail" in message.body:
        raise ValueError("asked to fail")


def slow(message):
    """Sync: take ``$TESTPROJECT_HANDLER_SECONDS`` (default 2) per message."""
    _record("started", message)
    time.sleep(float(os.environ.get("TESTPROJECT_HANDLER_SECONDS", "2")))
    _record("finished", message)


async def block_loop(message):
    """Async but blocking: holds the event loop for ``$TESTPROJECT_HANDLER_SECONDS`` (a bug)."""
    _record("started", message)
    time.sleep(float(os.environ.get("TESTPROJECT_HANDLER_SECONDS", "2")))
    _record("finished", message)


async def echo(message):
    """Async: publish the body to ``reply_to`` with confirms (consume + republish)."""
    if message.reply_to:
        await apublish(message.body, message.reply_to)
    await asyncio.sleep(0)


not_callable = 42
