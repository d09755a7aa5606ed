"""WSGI entry point for any WSGI server; `manage.py serve` loads the application itself."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE",
    "{{ cookiecutter.project_slug }}.settings.production",
)

application = get_wsgi_application()
