from unittest import mock

import pytest
from django.core.checks import Error
from django.db import OperationalError

from {{ cookiecutter.project_slug }}.items.checks import items_table_readable
from {{ cookiecutter.project_slug }}.items.models import Item


@pytest.mark.django_db
def test_readiness_passes_when_the_items_table_answers():
    assert items_table_readable(databases=["default"]) == []


@pytest.mark.django_db
def test_readiness_fails_while_the_database_is_down():
    with mock.patch.object(Item.objects, "exists", side_effect=OperationalError("gone")):
        errors = items_table_readable(databases=["default"])

    assert [error.id for error in errors] == ["items.E001"]
    assert isinstance(errors[0], Error)


def test_readiness_stays_offline_when_no_database_is_named():
    # `manage.py check` and `migrate` run checks without naming databases to probe.
    assert items_table_readable() == []
