#!/usr/bin/env python
"""Django's command-line utility; `serve` starts the app server (see README.md)."""

import os
import sys
from urllib.parse import urlsplit


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def database_problem(error: Exception) -> str:
    """One line for a database that cannot be reached or does not exist, instead of a long
    traceback: what failed, on which URL, and what to do about it."""
    url = os.environ.get("DATABASE_URL") or "the local SQLite file db.sqlite3"
    reason = " ".join(str(error).split())
    hint = (
        "start the local database with `make services`, or point DATABASE_URL (.env) at a "
        "running server with an existing database"
        if url.startswith("postgres")
        else "check DATABASE_URL in .env"
    )
    command = " ".join(["manage.py", *sys.argv[1:2]])
    return f"{command}: cannot use {without_password(url)}: {reason}; {hint}."


def main():
    os.environ.setdefault(
        "DJANGO_SETTINGS_MODULE",
        "{{ cookiecutter.project_slug }}.settings.local",
    )
    from django.conf import settings
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:
        if not settings.DEBUG:  # production: the whole traceback goes to the logs
            raise
        sys.exit(database_problem(error))


if __name__ == "__main__":
    main()
