"""The Celery parts that need no broker: health decisions, label bounds, the option table."""

import time

from prometheus_client import CollectorRegistry

from hurricane_runtime.celery.health import BeatHealth, WorkerHealth
from hurricane_runtime.celery.metrics import MAX_TASK_NAMES, OVERFLOW_TASK, TaskMetrics
from hurricane_runtime.config import CeleryConfig


def stale(heartbeat, seconds: float) -> None:
    heartbeat.last = time.monotonic() - seconds


def test_worker_is_ready_only_while_consuming():
    health = WorkerHealth(loop_timeout=30)
    assert health.readiness_reasons() == ["not consuming: connecting to the broker"]
    health.consuming_started(health.generation)
    assert health.readiness_reasons() == []
    health.connection_failed(ConnectionRefusedError(111, "Connection refused"), 2)
    assert health.readiness_reasons() == [
        "not consuming: broker unreachable: [Errno 111] Connection refused (next attempt in 2s)"
    ]


def test_a_consuming_mark_of_a_failed_connection_does_not_claim_the_next_one():
    health = WorkerHealth(loop_timeout=30)
    queued_for = health.generation
    health.consuming_stopped("broker connection lost, reconnecting")
    health.consuming_started(queued_for)
    assert not health.consuming


def test_worker_liveness_follows_the_loop_heartbeat():
    health = WorkerHealth(loop_timeout=30)
    stale(health.heartbeat, 29)
    assert health.liveness_reasons() == []
    stale(health.heartbeat, 31)
    assert health.liveness_reasons()[0].startswith("worker event loop stuck: no heartbeat for 31")
    health.shutting_down = True  # the loop stops on purpose while the pool drains
    assert health.liveness_reasons() == []


def test_a_task_on_the_solo_loop_is_busy_until_it_overruns_its_time_limit():
    health = WorkerHealth(loop_timeout=30)
    stale(health.heartbeat, 100)
    health.task_on_loop = ("items.tasks.sleep_for", time.monotonic() - 100, 300)
    assert health.liveness_reasons() == []
    health.task_on_loop = ("items.tasks.sleep_for", time.monotonic() - 331, 300)
    assert "past its 300s time limit" in health.liveness_reasons()[0]
    health.task_on_loop = ("items.tasks.sleep_for", time.monotonic() - 10_000, None)
    assert health.liveness_reasons() == []  # no limit: busy and stuck look alike


def test_beat_liveness_is_bounded_by_max_interval_plus_tick_timeout():
    health = BeatHealth(tick_timeout=30)
    health.max_interval = 300
    assert health.liveness_reasons() == []  # before the first tick: the startup probe's job
    health.ticked()
    stale(health.heartbeat, 329)
    assert health.liveness_reasons() == []
    stale(health.heartbeat, 331)
    assert "limit 330s" in health.liveness_reasons()[0]


def test_celery_options_come_from_the_common_table_with_their_own_rows():
    config = CeleryConfig.load(flags={}, settings=None, environ={"HURRICANE_PROBE_PORT": "9100"})
    assert config.probe_port == 9100
    assert config.worker_loop_timeout == 30.0
    assert config.reconnect_interval_max == 5.0
    assert CeleryConfig.load(flags={}, settings=None, environ={}).probe_port == 8001
    assert "port" not in config.summary()  # no app port: Celery serves no HTTP


def test_task_name_labels_are_bounded():
    metrics = TaskMetrics(CollectorRegistry(), WorkerHealth(loop_timeout=30))
    names = [f"tasks.generated_{index}" for index in range(MAX_TASK_NAMES)]
    assert [metrics.task(name) for name in names] == names
    assert metrics.task("tasks.one_too_many") == OVERFLOW_TASK
    assert metrics.task(names[0]) == names[0]  # known names keep their label
