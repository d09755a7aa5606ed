"""Minimal settings: only what the benchmark views need, the same for every server.

The harness picks the database with ``BENCH_DATABASE`` (``postgres`` when PostgreSQL answers on
127.0.0.1:5432, ``sqlite`` otherwise) so both servers always run against the same one.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# hurricane_runtime provides `manage.py serve`; it is listed for both servers so that both load
# the same apps. No middleware: the benchmark measures the server, not Django's stack.
INSTALLED_APPS = ["hurricane_runtime", "bench"]
MIDDLEWARE = []
ROOT_URLCONF = "benchproject.urls"
WSGI_APPLICATION = "benchproject.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("BENCH_DATABASE", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "test"),
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            # Persistent connections for both servers: one per gunicorn process, one per
            # serve worker thread.
            "CONN_MAX_AGE": 60,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", str(BASE_DIR / "bench.sqlite3")),
            "CONN_MAX_AGE": 60,
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
