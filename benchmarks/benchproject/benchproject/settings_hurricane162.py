"""The bench project for django-hurricane 1.6.2's ``consume`` (benchmarks/consume.py).

The same settings with django-hurricane's app (package ``hurricane``) in place of
``hurricane_runtime``, which its environment does not have.
"""

from .settings import *  # noqa: F403

INSTALLED_APPS = ["hurricane", "bench"]
