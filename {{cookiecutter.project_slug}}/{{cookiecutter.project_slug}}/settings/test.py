"""Settings for pytest: an in-memory SQLite database unless DATABASE_URL is set."""

import os

from .base import *  # noqa: F403
from .base import database_from_env

SECRET_KEY = "test-only-secret-key-never-used-outside-the-test-suite"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "localhost"]
DATABASES = {"default": database_from_env("sqlite://:memory:")}
if "DATABASE_URL" in os.environ:
    # Tests open and close connections per test; keeping them would hold the test database.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
LOGGING = {"version": 1, "disable_existing_loggers": False}
