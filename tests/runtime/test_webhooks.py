"""State-change webhooks against a real HTTP receiver on a loopback port."""

import logging
import socket
import subprocess
import sys
import time

import pytest
from observability_helpers import isolated_logging, observability_config  # noqa: F401
from receiver import Receiver, verify_signature

from hurricane_runtime import __version__
from hurricane_runtime.events import Observers, StateEvent
from hurricane_runtime.observability import install
from hurricane_runtime.state import RuntimeState
from hurricane_runtime.webhooks import WebhookSender, backoff_delay, sign

SECRET = "s3cret-for-tests"


def fast_sender(url: str, **options) -> WebhookSender:
    """A sender with test-sized timeouts and backoff (the defaults are for production)."""
    options = {"timeout": 2.0, "backoff_base": 0.05, "backoff_max": 0.3, **options}
    return WebhookSender(url, **options)


def state_event(probe="readiness", healthy=True, reason="ok") -> StateEvent:
    return StateEvent(probe=probe, healthy=healthy, reason=reason, timestamp=time.time())


def test_signed_events_arrive_in_order_with_the_documented_fields(monkeypatch):
    monkeypatch.setenv("POD_NAME", "web-7d9f-abcde")
    with Receiver(secret=SECRET) as receiver:
        sender = fast_sender(receiver.url, secret=SECRET, version="1.4.2")
        sender.on_state_event(state_event("startup", True, "started"))
        for index in range(20):
            sender.on_state_event(state_event("readiness", index % 2 == 0, f"flip {index}"))
        events = receiver.wait_for(21)
        assert sender.flush(timeout=5)

    assert receiver.bad_signatures == 0
    assert [event["sequence"] for event in events] == list(range(1, 22))
    assert [event["reason"] for event in events[1:]] == [f"flip {i}" for i in range(20)]
    first = events[0]
    assert first["type"] == "startup"
    assert first["status"] == "healthy"
    assert first["pod"] == "web-7d9f-abcde"
    assert first["version"] == "1.4.2"
    assert first["runtime_version"] == __version__
    assert first["timestamp"].endswith("+00:00")
    assert {"id", "type", "status", "reason", "pod", "version", "timestamp"} <= set(first)
    assert events[2]["status"] == "unhealthy"
    assert sender.delivered == 21


def test_a_wrong_secret_fails_verification_and_is_not_retried():
    with Receiver(secret=SECRET) as receiver:
        sender = fast_sender(receiver.url, secret="not-the-secret")
        sender.on_state_event(state_event())
        assert sender.flush(timeout=5)
    assert receiver.events == []
    assert receiver.bad_signatures == 1
    assert sender.rejected == 1  # 401: refused for good, no retry loop


def test_signature_covers_timestamp_and_body_and_rejects_replays():
    body = b'{"type":"readiness"}'
    now = int(time.time())
    headers = {
        "X-Hurricane-Timestamp": str(now),
        "X-Hurricane-Signature": sign(SECRET, str(now), body),
    }
    assert verify_signature(SECRET, headers, body)
    assert not verify_signature(SECRET, headers, body + b" ")
    assert not verify_signature("other", headers, body)
    moved = {**headers, "X-Hurricane-Timestamp": str(now + 1)}
    assert not verify_signature(SECRET, moved, body)
    assert not verify_signature(SECRET, headers, body, now=now + 3600)


def test_delivery_resumes_in_order_after_the_receiver_was_down(caplog):
    caplog.set_level(logging.INFO, logger="hurricane_runtime.webhooks")
    receiver = Receiver().start()
    receiver.stop()  # it had a port, and now nothing listens there
    sender = fast_sender(receiver.url)
    for index in range(5):
        sender.on_state_event(state_event(reason=f"while down {index}"))
    time.sleep(1.0)  # several failed attempts with backoff
    assert sender.failed_attempts >= 2
    assert sender.delivered == 0
    with receiver.start():
        sender.on_state_event(state_event(reason="after restart"))
        events = receiver.wait_for(6)
        assert sender.flush(timeout=5)
    assert [event["reason"] for event in events] == [
        *(f"while down {i}" for i in range(5)),
        "after restart",
    ]
    assert sender.dropped == 0
    # One warning per outage, not one per attempt, and a line when it is over.
    messages = [r.getMessage() for r in caplog.records if r.name == "hurricane_runtime.webhooks"]
    assert len([m for m in messages if m.startswith("webhook delivery failing")]) == 1
    assert len([m for m in messages if m.startswith("webhook delivery works again")]) == 1


def test_server_errors_are_retried_until_the_receiver_recovers():
    with Receiver() as receiver:
        receiver.answer_status = 503
        sender = fast_sender(receiver.url)
        sender.on_state_event(state_event(reason="first"))
        sender.on_state_event(state_event(reason="second"))
        time.sleep(0.5)
        assert receiver.attempts >= 2 and receiver.events == []
        receiver.answer_status = 200
        events = receiver.wait_for(2)
        assert sender.flush(timeout=5)
    assert [event["reason"] for event in events] == ["first", "second"]


@pytest.fixture
def silent_receiver():
    """A port that accepts connections and never answers: the worst kind of dead receiver."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def test_a_dead_receiver_never_blocks_the_caller_and_the_queue_stays_bounded(silent_receiver):
    sender = fast_sender(silent_receiver, queue_size=10, timeout=0.3)
    started = time.perf_counter()
    for index in range(1000):
        sender.on_state_event(state_event(reason=str(index)))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"enqueueing 1000 events took {elapsed:.3f}s"
    assert sender.queued <= 10
    assert sender.dropped >= 989

    started = time.perf_counter()
    assert sender.flush(timeout=0.5) is False  # bounded: gives up, never hangs shutdown
    assert time.perf_counter() - started < 1.0


def test_a_full_queue_keeps_the_newest_events():
    receiver = Receiver().start()
    receiver.stop()
    sender = fast_sender(receiver.url, queue_size=3)
    for index in range(10):
        sender.on_state_event(state_event(reason=str(index)))
    with receiver.start():
        events = receiver.wait_for(3)
        assert sender.flush(timeout=5)
    assert [event["reason"] for event in events] == ["7", "8", "9"]
    assert sender.dropped == 7


def test_flush_delivers_what_is_queued_before_returning():
    with Receiver() as receiver:
        sender = fast_sender(receiver.url)
        for index in range(10):
            sender.on_state_event(state_event(reason=str(index)))
        assert sender.flush(timeout=5)
        assert len(receiver.events) == 10


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for failures in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (failures - 1))
        delays = [backoff_delay(failures) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jitter: pods do not retry in lockstep


@pytest.mark.usefixtures("isolated_logging")
def test_install_sends_state_changes_and_counts_them_in_metrics():
    with Receiver(secret=SECRET) as receiver:
        config = observability_config(
            webhook_url=receiver.url, webhook_secret=SECRET, project_version="3.1.0"
        )
        observers = Observers()
        installed = install(config, RuntimeState(workers=4, backlog_limit=8), observers)
        observers.notify(observers.state_changed, state_event("startup", True, "listening"))
        observers.notify(observers.state_changed, state_event("readiness", False, "draining"))
        events = receiver.wait_for(2)
        for stop in observers.server_stopping:
            stop()
        status, _, body = observers.probe_routes["/metrics"]()
    assert [(e["type"], e["status"]) for e in events] == [
        ("startup", "healthy"),
        ("readiness", "unhealthy"),
    ]
    assert installed.webhooks.delivered == 2
    assert status == 200
    assert "hurricane_webhook_delivered_total 2.0" in body.decode()


@pytest.mark.usefixtures("isolated_logging")
def test_no_webhook_url_means_no_sender():
    config = observability_config(no_metrics=True)
    observers = Observers()
    installed = install(config, RuntimeState(workers=1, backlog_limit=1), observers)
    assert installed.webhooks is None
    assert observers.state_changed == []


def test_events_queued_just_before_the_process_exits_are_still_sent():
    """A failed start-up exits right after its event: the exit must not lose it."""
    script = (
        "import sys, time\n"
        "from hurricane_runtime.events import StateEvent\n"
        "from hurricane_runtime.webhooks import WebhookSender\n"
        "sender = WebhookSender(sys.argv[1])\n"
        "sender.on_state_event(StateEvent('startup', False, 'start-up failed', time.time()))\n"
        "sys.exit(1)\n"
    )
    with Receiver() as receiver:
        subprocess.run([sys.executable, "-c", script, receiver.url], timeout=30, check=False)
        events = receiver.wait_for(1, timeout=1)
    assert [(e["type"], e["status"], e["reason"]) for e in events] == [
        ("startup", "unhealthy", "start-up failed")
    ]


def test_a_redirect_is_reported_not_followed():
    """Following it would turn the POST into a GET without the event."""
    with Receiver() as receiver:
        receiver.answer_status = 302
        sender = fast_sender(receiver.url)
        sender.on_state_event(state_event())
        assert sender.flush(timeout=5)
    assert receiver.attempts == 1
    assert sender.rejected == 1 and sender.delivered == 0
