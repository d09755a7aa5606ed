"""Health checks of the items app, through Django's check framework.

The runtime's readiness probe runs every check tagged "readiness": while one returns an Error,
the pod gets no traffic. ``readiness_check`` registers the function with that tag (it is
``django.core.checks.register(check, "readiness")`` plus a guard that keeps `manage.py check`
and `migrate` from running it). Copy this shape for each dependency the service cannot answer
without. Never make a dependency a liveness check: a database outage must not make Kubernetes
restart healthy pods. See docs/runtime.md.
"""

from django.core.checks import Error
from django.db import DatabaseError, close_old_connections, connection
from hurricane_runtime.checks import readiness_check

from .models import Item


@readiness_check
def items_table_readable(app_configs=None, **kwargs):
    """The items table exists (migrations ran) and answers a query."""
    # The probe runs on a thread of its own, outside any request: drop a connection that the
    # database closed or that outlived CONN_MAX_AGE, as Django does around each request (but
    # never one inside a transaction, as in a test).
    if not connection.in_atomic_block:
        close_old_connections()
    try:
        Item.objects.exists()
    except DatabaseError as error:
        if not connection.in_atomic_block:
            connection.close()
        return [Error(f"items table not readable: {error}", id="items.E001")]
    return []
