"""The example tasks: run eagerly (in this process, no broker), then by a real `celery worker`
through the broker (CELERY_BROKER_URL, as `make services` starts it) when one is reachable."""

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from {{ cookiecutter.project_slug }}.celery import app
from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.items.tasks import count_items, create_item
from tests.processes import free_port, probe, unreachable, wait_until


@pytest.fixture
def eager():
    """Tasks run inside `delay()`, and their errors raise there."""
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=False, task_eager_propagates=False)


@pytest.mark.django_db
def test_create_item_creates_it_once(eager):
    first = create_item.delay("  from a task ").get()
    again = create_item.delay("from a task").get()  # a redelivery after a crash

    assert first == again
    assert list(Item.objects.values_list("name", flat=True)) == ["from a task"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", 7, "x" * 201])
def test_create_item_refuses_a_bad_name(eager, name):
    with pytest.raises(ValueError, match="name"):
        create_item.delay(name).get()

    assert not Item.objects.exists()


@pytest.mark.django_db
def test_count_items(eager):
    Item.objects.create(name="one")
    Item.objects.create(name="two")

    assert count_items.delay().get() == 2


def test_beat_schedules_count_items():
    assert app.conf.beat_schedule["count-items"]["task"] == count_items.name


# -- against a real broker --------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent
APP = "{{ cookiecutter.project_slug }}"


def broker_url() -> str:
    """The broker of the test run: TEST_CELERY_BROKER_URL, else the settings' (.env)."""
    return os.environ.get("TEST_CELERY_BROKER_URL") or settings.CELERY_BROKER_URL


def test_a_worker_runs_a_task_sent_through_the_broker(tmp_path):
    """`celery worker` as the Deployment runs it (its probes included) takes a task from the
    real broker and creates the item, then stops cleanly on SIGTERM."""
    url = broker_url()
    reason = unreachable(url)
    if reason:
        pytest.skip(reason)
    # A queue of its own, so a worker of `make worker` never takes this test's task, and a
    # database file both this test and the worker process can open.
    queue = f"test-tasks-{uuid.uuid4().hex[:12]}"
    database = tmp_path / "tasks.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "{{ cookiecutter.project_slug }}.settings.test",
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": url,
    }
    migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
    subprocess.run(migrate, cwd=PROJECT, env=env, check=True, timeout=120)
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", APP, "worker", "--pool", "solo", "--queues", queue],
        cwd=PROJECT,
        # As in the Deployment: SIGTERM starts the soft shutdown (a short one here).
        env={
            **env,
            "HURRICANE_PROBE_PORT": str(port),
            "REMAP_SIGTERM": "SIGQUIT",
            "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT": "3",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: probe(port, "/ready") == 200, 60, "the worker is ready", worker)
        with app.connection_for_write(url) as connection:
            create_item.apply_async(("through the broker",), queue=queue, connection=connection)

        def names():
            with sqlite3.connect(database) as connection:
                return [name for (name,) in connection.execute("SELECT name FROM items_item")]

        wait_until(lambda: names() == ["through the broker"], 30, "the task ran", worker)
        assert probe(port, "/alive") == 200
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        # The test's queue and the exchange Celery declared for it, nothing else (on Redis, the
        # exchange is the transport's binding keys).
        with app.connection_for_write(url) as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
            if connection.transport.driver_type == "redis":
                bindings = (f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
                channel.client.delete(*bindings)
    assert worker.returncode == 0, output
