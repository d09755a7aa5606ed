"""The example consumer: one `Item` per message of the queue `items`.

`make consume` runs it locally, the consumer Deployment (k8s/base/consumer.yaml) in Kubernetes:
`python manage.py consume {{ cookiecutter.project_slug }}.items.handlers.handle --queue items`. It is a sync
handler, so the runtime runs it on worker threads with Django's connection housekeeping around
every message and the ORM just works (docs/amqp.md).

A message is JSON: `{"name": "..."}`. One that can never become an item (not JSON, no name) is
rejected to the dead-letter queue `items.dlq` with one warning saying why: retrying it would
fail the same way, and the consumer goes on with the next message. Delivery is at least once:
after a crash the broker may hand a message over again.
"""

import logging

from hurricane_runtime.amqp import Message, Reject

from .models import Item

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = Item._meta.get_field("name").max_length
# How much of a rejected body the warning shows: enough to recognise it, never a whole upload.
BODY_PREVIEW = 80


class MalformedMessage(ValueError):
    """A message no retry can turn into an item."""


def item_name(message: Message) -> str:
    """The name a message asks for, or MalformedMessage saying what is wrong with it."""
    try:
        data = message.json()
    except ValueError as error:  # invalid JSON or invalid UTF-8 (both are ValueErrors)
        raise MalformedMessage(f"the body is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"the body is a JSON {type(data).__name__}, not an object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MalformedMessage('"name" is missing or is not a non-empty string')
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise MalformedMessage(f'"name" is {len(name)} characters long, at most {NAME_MAX_LENGTH}')
    return name


def handle(message: Message) -> None:
    try:
        name = item_name(message)
    except MalformedMessage as error:
        logger.warning(
            "message %s rejected to the dead-letter queue: %s; body starts with %r",
            message.message_id or "(no message id)",
            error,
            message.body[:BODY_PREVIEW],
        )
        raise Reject() from error
    item = Item.objects.create(name=name)
    logger.info("item %s created from message %s", item.pk, message.message_id or "(no id)")
