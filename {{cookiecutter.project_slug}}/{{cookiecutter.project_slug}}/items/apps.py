from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "{{ cookiecutter.project_slug }}.items"

    def ready(self):
        # Importing registers the readiness check and the signal receivers.
        from . import checks, receivers  # noqa: F401
