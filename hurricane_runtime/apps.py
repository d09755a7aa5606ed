"""The Django app: add ``"hurricane_runtime"`` to ``INSTALLED_APPS`` to get ``manage.py serve``
and ``manage.py hurricane_audit``."""

from django.apps import AppConfig


class HurricaneRuntimeConfig(AppConfig):
    name = "hurricane_runtime"
    verbose_name = "Hurricane runtime"

    def ready(self) -> None:
        # The database readiness check is ours; registering it here (guarded, see checks.py)
        # keeps `manage.py check` and `migrate` working while the database is down.
        from .checks import database_answers, readiness_check

        readiness_check(database_answers)

        # The guidelines are deployment checks (tag "hurricane"): `manage.py check --deploy`
        # and `manage.py hurricane_audit` run them, a plain `manage.py check` never does.
        from .guidelines import load_all, register_system_checks

        load_all()
        register_system_checks()
