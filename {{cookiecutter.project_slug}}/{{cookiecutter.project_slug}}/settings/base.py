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
