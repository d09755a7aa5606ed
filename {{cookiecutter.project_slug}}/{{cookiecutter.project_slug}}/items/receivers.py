"""Signal receivers of the items app. `index_item` stands for heavy work (a search index, a
cache warm-up, a call to another service) that most tests switch off with `suspend_signals`.
{%- if cookiecutter.websockets == "yes" %}
`broadcast_item` tells the clients of the live feed (/ws/items/, consumers.py) about every new
item, on every pod, through the channel layer.
{%- endif %}"""

import logging

{% if cookiecutter.websockets == "yes" -%}
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
{% endif -%}
from django.db.models.signals import post_save
from django.dispatch import receiver

from {{ cookiecutter.project_slug }}.signals import suspendable

{% if cookiecutter.websockets == "yes" -%}
from .consumers import FEED_GROUP
{% endif -%}
from .models import Item

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Item)
@suspendable
def index_item(sender, instance, created, **kwargs):
    logger.info("indexed item %s", instance.pk)
{%- if cookiecutter.websockets == "yes" %}


@receiver(post_save, sender=Item)
@suspendable
def broadcast_item(sender, instance, created, **kwargs):
    """Send a new item to the feed once its transaction commits (a rolled-back item was never
    there). A failed send is logged, never raised: the item is saved, and the feed is a
    notification that clients can catch up on over GET /api/items/."""
    if not created:
        return
    item = {
        "id": instance.pk,
        "name": instance.name,
        "created_at": instance.created_at.isoformat(),
    }
    transaction.on_commit(lambda: send_to_feed(item), using=kwargs.get("using"))


def send_to_feed(item: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(
            FEED_GROUP, {"type": "item.created", "item": item}
        )
    except Exception as error:  # Redis down must not fail the write
        logger.warning("item %s not sent to the live feed: %s", item["id"], error)
{%- endif %}
