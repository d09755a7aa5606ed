"""The test project as production would run it: the secret key and the allowed hosts come from
the environment, with no fallback (``hurricane_audit`` finds nothing here)."""

import os

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403

for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
    if not os.environ.get(name):
        raise ImproperlyConfigured(f"{name} must be set in production.")

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = [host.strip() for host in os.environ["DJANGO_ALLOWED_HOSTS"].split(",")]
