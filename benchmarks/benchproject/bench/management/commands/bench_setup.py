"""Create the benchmark table if missing and fill it with ten rows.

No migrations on purpose: the shared PostgreSQL database `test` keeps no `django_migrations`
rows of ours, and dropping the table is all it takes to clean up.
"""

from django.core.management.base import BaseCommand
from django.db import connection

from bench.models import Item

ROWS = 10


class Command(BaseCommand):
    help = "Create and fill the benchmark table (idempotent)."

    def handle(self, *args, **options):
        if Item._meta.db_table not in connection.introspection.table_names():
            with connection.schema_editor() as editor:
                editor.create_model(Item)
        missing = ROWS - Item.objects.count()
        Item.objects.bulk_create(
            Item(name=f"item {number}", price=number) for number in range(missing)
        )
        self.stdout.write(f"{Item._meta.db_table}: {Item.objects.count()} rows")
