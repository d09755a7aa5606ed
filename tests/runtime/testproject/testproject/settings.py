"""Settings of the runtime's test project: small, and the database comes from the environment.

``DATABASE_URL`` selects the database: ``postgres://user@host:port/name`` or
``sqlite:///absolute/path.sqlite3`` (default: ``db.sqlite3`` next to this project).
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "runtime-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "testproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "hurricane_runtime",
    "items",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static_root"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media_root"


def database_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path)}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # As production runs it (hurricane_audit): reused connections checked before use,
            # a connect timeout, and a statement timeout that frees a worker from a stuck query.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 5, "options": "-c statement_timeout=30000"},
        }
    raise ValueError(f"unsupported DATABASE_URL scheme: {parts.scheme!r}")


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}

# Runtime options can also come from settings; tests use this to check precedence.
if "TESTPROJECT_SETTING_PORT" in os.environ:
    HURRICANE_PORT = os.environ["TESTPROJECT_SETTING_PORT"]
if "TESTPROJECT_SETTING_WORKERS" in os.environ:
    HURRICANE_WORKERS = int(os.environ["TESTPROJECT_SETTING_WORKERS"])

# Async views and websockets (``serve --websockets``): the project's ASGI application with
# Channels routes, the Origin check's allowed sites, and the channel layer. Redis when
# ``TESTPROJECT_REDIS_URL`` is set (group messages across processes; the pub/sub layer with
# ``TESTPROJECT_CHANNEL_LAYER=pubsub``), else in memory.
if "TESTPROJECT_NO_ASGI_APPLICATION" not in os.environ:
    ASGI_APPLICATION = "testproject.asgi.application"
WEBSOCKET_ALLOWED_ORIGINS = ["http://allowed.example"]
if os.environ.get("TESTPROJECT_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": (
                "channels_redis.pubsub.RedisPubSubChannelLayer"
                if os.environ.get("TESTPROJECT_CHANNEL_LAYER") == "pubsub"
                else "channels_redis.core.RedisChannelLayer"
            ),
            "CONFIG": {"hosts": [os.environ["TESTPROJECT_REDIS_URL"]]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery (the worker and beat tests). Safe defaults as docs/celery.md recommends them.
CELERY_BROKER_URL = os.environ.get("TESTPROJECT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TESTPROJECT_CELERY_QUEUE", "celery")
if CELERY_BROKER_URL.startswith("amqp"):
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(os.environ.get("TESTPROJECT_SOFT_SHUTDOWN", "10"))
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BEAT_MAX_LOOP_INTERVAL = float(os.environ.get("TESTPROJECT_BEAT_MAX_INTERVAL", "300"))
CELERY_BEAT_SCHEDULE = {
    "add-every-second": {"task": "items.tasks.add", "schedule": 1.0, "args": (1, 2)},
}
