"""Settings for pytest: an in-memory SQLite database unless DATABASE_URL is set (in the
environment or in `.env`, where PostgreSQL projects point it at `make services`' database)."""

import os

from .dotenv import read_env_file

read_env_file()

from .base import *  # noqa: E402,F403
from .base import database_from_env  # noqa: E402

SECRET_KEY = "test-only-secret-key-never-used-outside-the-test-suite"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "localhost"]
DATABASES = {"default": database_from_env("sqlite://:memory:")}
if "DATABASE_URL" in os.environ:
    # Tests open and close connections per test; keeping them would hold the test database.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
LOGGING = {"version": 1, "disable_existing_loggers": False}
