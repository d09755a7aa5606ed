from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "healthapp"

    def ready(self):
        from . import checks  # noqa: F401
