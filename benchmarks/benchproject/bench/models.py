from django.db import models


class Item(models.Model):
    """A row for the one-query ORM view."""

    name = models.CharField(max_length=100)
    price = models.IntegerField()

    class Meta:
        # Our own table name: the shared `test` database must not clash with anyone's tables.
        db_table = "hurricane_bench_item"

    def __str__(self):
        return self.name
