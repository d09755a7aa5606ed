import os
from pathlib import Path

from django.apps import AppConfig
from django.core.checks import Error


class ItemsConfig(AppConfig):
    name = "items"

    def ready(self):
        from hurricane_runtime.checks import liveness_check, readiness_check

        @readiness_check
        def unready_flag(app_configs=None, **kwargs):
            """Readiness fails while the file named by TESTPROJECT_UNREADY_FILE exists."""
            return _flag("TESTPROJECT_UNREADY_FILE", "items.E001")

        @liveness_check
        def dead_flag(app_configs=None, **kwargs):
            """Liveness fails while the file named by TESTPROJECT_DEAD_FILE exists."""
            return _flag("TESTPROJECT_DEAD_FILE", "items.E002")


def _flag(variable: str, check_id: str):
    path = os.environ.get(variable)
    if path and Path(path).exists():
        return [Error(f"{Path(path).name} exists", id=check_id)]
    return []
