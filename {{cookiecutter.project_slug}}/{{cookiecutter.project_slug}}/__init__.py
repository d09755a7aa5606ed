"""The {{ cookiecutter.project_slug }} service (see README.md)."""
{%- if cookiecutter.celery != "no" %}

# The Celery app is loaded with Django, so `shared_task`s bind to it and `delay()` from a view
# sends with its settings (Celery's "First steps with Django").
from .celery import app as celery_app

__all__ = ("celery_app",)
{%- endif %}
