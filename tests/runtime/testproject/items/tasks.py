"""Tasks of the test project's Celery app."""

import time

from celery import shared_task
from django.db import connection


@shared_task
def add(x, y):
    return x + y


@shared_task
def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


@shared_task
def fail():
    raise ValueError("this task always fails")


@shared_task(bind=True, max_retries=1, default_retry_delay=0)
def retry_once(self):
    if self.request.retries == 0:
        raise self.retry()
    return "retried"


@shared_task
def record_run(table, seconds):
    """Write a 'started' row, work ``seconds``, write a 'finished' row (the test counts them)."""
    name = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {name} (phase) VALUES ('started')")
    time.sleep(seconds)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {name} (phase) VALUES ('finished')")


@shared_task
def spin(seconds):
    """Hold a CPU for ``seconds`` (the Celery probe benchmark keeps every child busy)."""
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        count += 1
    return count
