"""Signal receivers of the items app. `index_item` stands for heavy work (a search index, a
cache warm-up, a call to another service) that most tests switch off with `suspend_signals`."""

import logging

from django.db.models.signals import post_save
from django.dispatch import receiver

from {{ cookiecutter.project_slug }}.signals import suspendable

from .models import Item

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Item)
@suspendable
def index_item(sender, instance, created, **kwargs):
    logger.info("indexed item %s", instance.pk)
