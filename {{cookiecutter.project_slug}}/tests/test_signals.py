import pytest
from django.test import override_settings

from {{ cookiecutter.project_slug }}.items import receivers
from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.signals import receiver_name, suspend_signals

pytestmark = pytest.mark.django_db

INDEX_LOGGER = "{{ cookiecutter.project_slug }}.items.receivers"


def indexed(caplog):
    return [r for r in caplog.records if r.name == INDEX_LOGGER and "indexed" in r.message]


def test_receivers_run_by_default(caplog):
    caplog.set_level("INFO", logger=INDEX_LOGGER)

    Item.objects.create(name="loud")

    assert len(indexed(caplog)) == 1


def test_suspend_signals_as_context_manager_skips_the_receiver(caplog):
    caplog.set_level("INFO", logger=INDEX_LOGGER)

    with suspend_signals(receivers.index_item):
        Item.objects.create(name="quiet")
    Item.objects.create(name="loud again")

    assert len(indexed(caplog)) == 1


@suspend_signals(receivers.index_item)
def test_suspend_signals_as_decorator_skips_the_receiver(caplog):
    caplog.set_level("INFO", logger=INDEX_LOGGER)

    Item.objects.create(name="quiet")

    assert indexed(caplog) == []


def test_receivers_are_listed_by_dotted_name(caplog):
    caplog.set_level("INFO", logger=INDEX_LOGGER)
    name = receiver_name(receivers.index_item)
    assert name == "{{ cookiecutter.project_slug }}.items.receivers.index_item"

    with override_settings(SUSPENDED_SIGNALS=[name]):
        Item.objects.create(name="quiet")

    assert indexed(caplog) == []
