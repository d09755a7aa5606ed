# Appended to the settings.py of a fresh `django-admin startproject badsite`: the usual mistakes
# of a project on its way to Kubernetes, one or more per guideline id.
import os  # noqa: E402

INSTALLED_APPS += ["hurricane_runtime", "healthapp"]  # noqa: F821
MIDDLEWARE += ["badsite.middleware.timing"]  # noqa: F821  (hurricane.W013: sync only)

# hurricane.W004 (falls back to "*" without the variable) and W005 (the fallback itself).
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")

DATABASES = {
    # hurricane.W006 (no CONN_MAX_AGE), W008 (no connect_timeout), W009 (no statement_timeout)
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "HOST": "127.0.0.1",
        "PORT": "1",
    },
    # hurricane.W007: reused connections, never checked
    "replica": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "HOST": "127.0.0.1",
        "PORT": "1",
        "CONN_MAX_AGE": 60,
    },
}

# hurricane.W010: a Redis cache that may wait forever
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
    }
}

# hurricane.W011: logs to a file inside the container
LOGGING = {
    "version": 1,
    "handlers": {
        "file": {"class": "logging.FileHandler", "filename": str(BASE_DIR / "app.log")},  # noqa: F821
    },
    "root": {"handlers": ["file"], "level": "INFO"},
}

# hurricane.W014: development flags that production inherits
HURRICANE_AUTORELOAD = True
HURRICANE_DEBUG = True
