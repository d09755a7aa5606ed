"""ASGI entry point, for an ASGI server should the service ever need one."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE",
    "{{ cookiecutter.project_slug }}.settings.production",
)

application = get_asgi_application()
