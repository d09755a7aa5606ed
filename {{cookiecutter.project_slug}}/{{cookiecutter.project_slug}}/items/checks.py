"""Health checks of the items app, through Django's check framework.

The runtime's readiness probe runs every check tagged "readiness" (see docs/runtime.md): while
one returns an Error, the pod gets no traffic. Copy this shape for each dependency the service
cannot answer without. Never tag a dependency check "liveness": a database outage must not make
Kubernetes restart healthy pods.
"""

from django.core.checks import Error, register
from django.db import DatabaseError

from .models import Item


@register("readiness", deploy=True)
def items_table_readable(app_configs=None, databases=None, **kwargs):
    """The items table answers a query.

    Django only lets checks touch a database when the caller names it in ``databases`` (the
    runtime does; `manage.py check` and `migrate` do not), so plain checks stay offline.
    """
    if not databases or "default" not in databases:
        return []
    try:
        Item.objects.exists()
    except DatabaseError as error:
        return [Error(f"items table not readable: {error}", id="items.E001")]
    return []
