"""A Tornado app server for Django, built for Kubernetes: `python manage.py serve`."""

__version__ = "0.1.0"
