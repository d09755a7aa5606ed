"""The test project's Celery app, with the runtime's worker and beat probes installed.

``SIGUSR2`` blocks the main thread of the process that gets it for
``TESTPROJECT_WEDGE_SECONDS`` (default 30): the worker's event loop or beat's tick loop stops
the way a stuck control command or schedule store would stop it, which the liveness tests need.
"""

import os
import signal
import time

from celery import Celery

import hurricane_runtime.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

app = Celery("testproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
hurricane_runtime.celery.install(app)


def _wedge(signum, frame):
    time.sleep(float(os.environ.get("TESTPROJECT_WEDGE_SECONDS", "30")))


signal.signal(signal.SIGUSR2, _wedge)
