from django.core.checks import Error
from django.db import connection

from hurricane_runtime.checks import liveness_check


@liveness_check
def database_alive(app_configs=None, **kwargs):
    """hurricane.E004: a liveness check that asks the database (restarts every pod at once)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return [Error(f"database down: {error}", id="healthapp.E001")]
    return []
