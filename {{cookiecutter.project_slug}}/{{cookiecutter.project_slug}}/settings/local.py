"""Settings for a developer machine, the default of `manage.py`: debug on, SQLite in the
project folder unless DATABASE_URL is set (PostgreSQL projects set it in `.env` to the database
of `make services`), the secret key from the git-ignored `.env`."""

from django.core.exceptions import ImproperlyConfigured

from .dotenv import read_env_file

read_env_file()

from .base import *  # noqa: E402,F403
from .base import env_bool, env_list, env_str  # noqa: E402

DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Listen on this machine only; the container (production settings) listens on every address.
HURRICANE_BIND = env_str("HURRICANE_BIND", "127.0.0.1")
if not SECRET_KEY:  # noqa: F405
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set: run `make .env` to write a local one into .env."
    )
