from unittest import mock

import pytest
from django.core.checks import registry
from django.core.management import call_command
from django.db import OperationalError

from {{ cookiecutter.project_slug }}.items.checks import items_table_readable
from {{ cookiecutter.project_slug }}.items.models import Item

# The check as written, without the guard that keeps it out of `manage.py check`.
check = items_table_readable.__wrapped__


def test_items_check_drives_the_readiness_probe():
    assert "readiness" in items_table_readable.tags
    assert items_table_readable in registry.registry.get_checks()


@pytest.mark.django_db
def test_readiness_passes_when_the_items_table_answers():
    assert check() == []


@pytest.mark.django_db
def test_readiness_fails_while_the_items_table_does_not_answer():
    with mock.patch.object(Item.objects, "exists", side_effect=OperationalError("gone")):
        errors = check()

    assert [(error.id, error.msg) for error in errors] == [
        ("items.E001", "items table not readable: gone")
    ]


def test_readiness_check_stays_out_of_manage_py_check():
    # `manage.py check` and `migrate` must work while the database is down.
    with mock.patch.object(Item.objects, "exists", side_effect=OperationalError("gone")):
        assert items_table_readable() == []
        call_command("check")
