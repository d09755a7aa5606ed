"""Settings for a developer machine, the default of `manage.py`: debug on, SQLite in the
project folder unless DATABASE_URL is set, the secret key from the git-ignored `.env`."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def read_env_file(path: Path) -> None:
    """Put KEY=VALUE lines of ``path`` into the environment; variables already set win."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip())


read_env_file(Path(__file__).resolve().parent.parent.parent / ".env")

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
