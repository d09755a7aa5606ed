"""The Celery app of {{ cookiecutter.project_slug }} (docs/celery.md).

`make worker` and `make beat` load it, as the worker and beat Deployments do
(k8s/base/celery-worker.yaml, celery-beat.yaml: `celery -A <package> worker`); the web pods
import it too (the package's `__init__.py`), so `task.delay()` sends with the same settings.
Its settings are the Django settings named `CELERY_*` (settings/base.py); tasks are found in
every app's `tasks.py`.

`install(app)` gives every worker and beat process the runtime's probe port (/startup, /ready,
/alive, /metrics on HURRICANE_PROBE_PORT); other processes that import the app are untouched.
"""

import os

import hurricane_runtime.celery
from celery import Celery

# As manage.py: local settings unless the environment names others (the image: production).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.project_slug }}.settings.local")

app = Celery("{{ cookiecutter.project_slug }}")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
hurricane_runtime.celery.install(app)
