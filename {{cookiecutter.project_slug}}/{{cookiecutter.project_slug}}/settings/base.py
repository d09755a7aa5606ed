"""Settings shared by every environment. Values that differ between deployments come from
environment variables; the defaults below are the answers the project was rendered with."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (true/false, 1/0, yes/no).")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list: "a.example.com, b.example.com"."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_env(default_url: str | None) -> dict:
    """DATABASES["default"] from DATABASE_URL (dj-database-url), else ``default_url``."""
    url = os.environ.get("DATABASE_URL") or default_url
    if not url:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set, e.g. postgres://user:password@host:5432/name "
            "or sqlite:////var/lib/app/db.sqlite3."
        )
    database = dj_database_url.parse(
        url,
        # Each worker thread keeps its connection for a minute and checks it before reuse.
        conn_max_age=env_int("DJANGO_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
{%- if cookiecutter.database == "postgresql" %}
    if database["ENGINE"] == "django.db.backends.postgresql":
        # Bounded waits: a database that does not answer must fail a request (and readiness)
        # in seconds, not hold a worker thread until the drain timeout. Parameters in the URL
        # (?connect_timeout=...&options=...) win over these defaults.
        options = database.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", env_int("DJANGO_DB_CONNECT_TIMEOUT", 5))
        statement_timeout = env_int("DJANGO_DB_STATEMENT_TIMEOUT", 30_000)
        options.setdefault("options", f"-c statement_timeout={statement_timeout}")
{%- endif %}
    return database


SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")

# An API service needs no admin, sessions, messages or templates: add them when you need them.
INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "hurricane_runtime",
    "{{ cookiecutter.project_slug }}.items",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "{{ cookiecutter.project_slug }}.urls"
WSGI_APPLICATION = "{{ cookiecutter.project_slug }}.wsgi.application"
ASGI_APPLICATION = "{{ cookiecutter.project_slug }}.asgi.application"
TEMPLATES = []

DATABASES = {"default": database_from_env(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# collectstatic writes here at image build time, so the container's root file system can be
# read-only at run time.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Signal receivers decorated with `suspendable` and listed here are skipped: tests switch heavy
# receivers off with `suspend_signals(...)`, see signals.py next to the settings package.
SUSPENDED_SIGNALS: list[str] = []

# The app server (`python manage.py serve`, options in docs/runtime.md). Strings on purpose:
# the runtime parses every HURRICANE_ option strictly, with messages that name the option. The
# Kubernetes manifests are rendered from the same answers, so ports and probe paths agree.
HURRICANE_PORT = env_str("HURRICANE_PORT", "{{ cookiecutter.app_port }}")
HURRICANE_PROBE_PORT = env_str("HURRICANE_PROBE_PORT", "{{ cookiecutter.probe_port }}")
HURRICANE_WORKERS = env_str("HURRICANE_WORKERS", "4")
HURRICANE_SHUTDOWN_DELAY = env_str("HURRICANE_SHUTDOWN_DELAY", "5")
HURRICANE_DRAIN_TIMEOUT = env_str("HURRICANE_DRAIN_TIMEOUT", "20")
HURRICANE_LOG_FORMAT = env_str("HURRICANE_LOG_FORMAT", "text")
{%- if cookiecutter.websockets == "yes" %}

# Websockets (docs/websockets.md): serve hands upgrades to ASGI_APPLICATION (asgi.py, Channels)
# and pings every open socket, below the idle timeout of the ingress (k8s/overlays/prod).
HURRICANE_WEBSOCKETS = env_str("HURRICANE_WEBSOCKETS", "true")
HURRICANE_WEBSOCKET_PING_INTERVAL = env_str("HURRICANE_WEBSOCKET_PING_INTERVAL", "20")

# The channel layer carries group messages (the live feed) between pods: Redis pub/sub, which
# delivers to whoever listens now and stores nothing. The prefix keeps the groups of services
# sharing one Redis apart; the connect timeout makes a Redis that does not answer an error (and
# readiness 503) in seconds.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": env_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "socket_connect_timeout": 5,
                }
            ],
            "prefix": "{{ cookiecutter.project_slug }}",
        },
    }
}
{%- endif %}
{%- if cookiecutter.celery != "no" %}

# Celery (docs/celery.md): the app is {{ cookiecutter.project_slug }}/celery.py, tasks live in each app's
# tasks.py. Every default below is a choice against losing or repeating work; docs/celery.md
# explains each. The broker comes from the environment ({% if cookiecutter.celery == "rabbitmq" %}amqp:// or amqps://, a vhost `/`
# as %2F{% else %}redis:// or rediss://{% endif %}).
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL",
    "{% if cookiecutter.celery == "rabbitmq" %}amqp://{{ cookiecutter.project_slug }}:{{ cookiecutter.project_slug }}@127.0.0.1:5672/%2F{% else %}redis://127.0.0.1:6379/0{% endif %}",
)
# A message is acked once its task finished: a pod killed mid-task gives it back to the broker.
# Tasks must therefore be idempotent. One message prefetched per process, so a busy worker
# holds nothing another pod could run; a child killed (OOM) gives its message back too.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# The broker redelivers a late-ack message when the connection drops: finishing it here too
# would run it twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Hard limit (the child is killed) and soft limit (SoftTimeLimitExceeded in the task), seconds.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# SIGTERM (remapped to SIGQUIT in the worker Deployment) gives running tasks this many seconds
# to finish, then cancels them and gives their messages back: keep it below the pod's
# terminationGracePeriodSeconds (k8s/base/celery-worker.yaml derives one from the other).
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env_int("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", 50)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
{%- if cookiecutter.celery == "rabbitmq" %}
# Quorum queues: replicated and durable; Celery switches to per-consumer QoS for them.
# Publisher confirms: `delay()` returns once the broker has the message.
CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
{%- else %}
# An unacked message goes to another worker after the visibility timeout: it must exceed the
# longest task (and ETA/countdown), or a long task runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "health_check_interval": 10,
}
{%- endif %}
# Beat's schedule file, on the writable /tmp of the beat pod (its root file system is read-only).
CELERY_BEAT_SCHEDULE_FILENAME = env_str("CELERY_BEAT_SCHEDULE_FILENAME", "/tmp/celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # The example periodic task (items/tasks.py).
    "count-items": {
        "task": "{{ cookiecutter.project_slug }}.items.tasks.count_items",
        "schedule": 300.0,
    },
}
{%- endif %}

# One line per record on stdout, in the runtime's format (text, or JSON lines for a log
# collector): the runtime's own lines and the project's look alike.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "hurricane_runtime.logs.TextFormatter"},
        "json": {"()": "hurricane_runtime.logs.JSONFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if HURRICANE_LOG_FORMAT == "json" else "text",
        },
    },
    "root": {"handlers": ["stdout"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    # Django's own logging config gives "django" a console handler of its own (active with
    # DEBUG): without this every Django line, like the autoreloader's, would print twice.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
