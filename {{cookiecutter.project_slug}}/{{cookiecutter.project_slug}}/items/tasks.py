"""Example Celery tasks working on `Item`s through the ORM (docs/celery.md).

Send one from anywhere in the project: `create_item.delay("a name")`; the worker
(`make worker`, k8s/base/celery-worker.yaml) runs it. Beat (`make beat`,
k8s/base/celery-beat.yaml) sends `count_items` on the schedule of CELERY_BEAT_SCHEDULE.

Acks are late (settings/base.py): a task whose worker dies mid-way runs again elsewhere, so
every task here is idempotent. Django's connection housekeeping runs around every task (Celery's
Django fixup closes stale connections), so the ORM just works.
"""

import logging

from celery import shared_task

from .models import Item

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = Item._meta.get_field("name").max_length


@shared_task
def create_item(name: str) -> int:
    """The item named `name`, created once: a second run (a redelivery) finds it; its id."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"name is {len(name)} characters long, at most {NAME_MAX_LENGTH}")
    item, created = Item.objects.get_or_create(name=name)
    logger.info("item %s %s by a task", item.pk, "created" if created else "already there")
    return item.pk


@shared_task
def count_items() -> int:
    """The periodic example: how many items there are, in the log and as the result."""
    count = Item.objects.count()
    logger.info("%s items", count)
    return count
