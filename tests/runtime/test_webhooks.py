"""State-change webhooks against a real HTTP receiver on a loopback port.

Signatures are checked with the ``standardwebhooks`` package (the Standard Webhooks reference
library), never with our own code: what it accepts is what receivers will accept.
"""

import base64
import logging
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from observability_helpers import isolated_logging, observability_config  # noqa: F401
from receiver import Receiver
from standardwebhooks import Webhook, WebhookVerificationError

from hurricane_runtime import __version__
from hurricane_runtime.events import Observers, StateEvent
from hurricane_runtime.observability import install
from hurricane_runtime.state import RuntimeState
from hurricane_runtime.webhooks import (
    WebhookSender,
    backoff_delay,
    decode_secret,
    retry_after_seconds,
    sign,
)


def make_secret(seed: bytes) -> str:
    return "whsec_" + base64.b64encode(seed.ljust(32, b"-")).decode()


SECRET = make_secret(b"runtime-tests-current")
OLD_SECRET = make_secret(b"runtime-tests-previous")


def fast_sender(url: str, **options) -> WebhookSender:
    """A sender with test-sized timeouts and backoff (the defaults are for production)."""
    options = {"timeout": 2.0, "backoff_base": 0.05, "backoff_max": 0.3, **options}
    return WebhookSender(url, **options)


def state_event(probe="readiness", healthy=True, reason="ok") -> StateEvent:
    return StateEvent(probe=probe, healthy=healthy, reason=reason, timestamp=time.time())


def one_delivery(secrets=(SECRET,)) -> tuple[dict, bytes]:
    """The headers and body of one real, accepted delivery."""
    with Receiver() as receiver:
        sender = fast_sender(receiver.url, secrets=secrets)
        sender.on_state_event(state_event("liveness", False, "event loop blocked"))
        receiver.wait_for(1)
        assert sender.flush(timeout=5)
    return receiver.deliveries[0]


# -- format and signatures, checked by the standardwebhooks package -------------------


def test_events_arrive_verified_in_order_in_the_standard_webhooks_shape(monkeypatch):
    monkeypatch.setenv("POD_NAME", "web-7d9f-abcde")
    with Receiver(secret=SECRET) as receiver:
        sender = fast_sender(receiver.url, secrets=[SECRET], version="1.4.2")
        sender.on_state_event(state_event("startup", True, "started"))
        for index in range(20):
            sender.on_state_event(state_event("readiness", index % 2 == 0, f"flip {index}"))
        events = receiver.wait_for(21)
        assert sender.flush(timeout=5)

    assert receiver.bad_signatures == 0
    assert [event["data"]["sequence"] for event in events] == list(range(1, 22))
    assert [event["data"]["reason"] for event in events[1:]] == [f"flip {i}" for i in range(20)]
    first = events[0]
    assert set(first) == {"type", "timestamp", "data", "_id"}
    assert first["type"] == "hurricane.startup.changed"
    assert events[1]["type"] == "hurricane.readiness.changed"
    assert first["timestamp"].endswith("Z")
    assert first["data"] == {
        "probe": "startup",
        "status": "healthy",
        "reason": "started",
        "pod": "web-7d9f-abcde",
        "version": "1.4.2",
        "runtime_version": __version__,
        "sequence": 1,
    }
    assert events[2]["data"]["status"] == "unhealthy"
    assert len({event["_id"] for event in events}) == 21  # webhook-id: unique per event
    assert sender.delivered == 21


def test_a_delivery_verifies_and_any_tampering_fails():
    headers, body = one_delivery()
    webhook = Webhook(SECRET)
    assert webhook.verify(body, headers)["type"] == "hurricane.liveness.changed"
    tampered = {
        "body": (headers, body.replace(b"blocked", b"fine!!!")),
        "id": ({**headers, "webhook-id": headers["webhook-id"] + "x"}, body),
        "timestamp": (
            {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)},
            body,
        ),
        "signature": ({**headers, "webhook-signature": "v1," + "A" * 44}, body),
    }
    for what, (changed_headers, changed_body) in tampered.items():
        with pytest.raises(WebhookVerificationError):
            webhook.verify(changed_body, changed_headers)
            pytest.fail(f"a tampered {what} verified")
    with pytest.raises(WebhookVerificationError):
        Webhook(make_secret(b"someone-else")).verify(body, headers)


def test_timestamps_outside_the_receivers_skew_window_are_refused():
    """Our signature over an old timestamp is still valid; only the age makes it refused."""
    key = decode_secret(SECRET)
    body = b'{"type":"hurricane.readiness.changed"}'
    webhook = Webhook(SECRET)
    for offset, accepted in ((-240, True), (240, True), (-400, False), (400, False)):
        timestamp = str(int(time.time()) + offset)
        headers = {
            "webhook-id": "msg_skew",
            "webhook-timestamp": timestamp,
            "webhook-signature": sign([key], "msg_skew", timestamp, body),
        }
        if accepted:
            webhook.verify(body, headers)
        else:
            with pytest.raises(WebhookVerificationError, match="too (old|new)"):
                webhook.verify(body, headers)


def test_two_secrets_sign_each_event_twice_so_either_receiver_key_verifies():
    headers, body = one_delivery(secrets=(OLD_SECRET, SECRET))
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    assert Webhook(OLD_SECRET).verify(body, headers)
    assert Webhook(SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(make_secret(b"not-rotated-in")).verify(body, headers)


def test_secrets_must_be_whsec_base64_of_24_to_64_bytes():
    assert decode_secret(SECRET) == b"runtime-tests-current".ljust(32, b"-")
    unpadded = "whsec_" + base64.b64encode(b"x" * 25).decode().rstrip("=")
    assert decode_secret(unpadded) == b"x" * 25
    for bad, problem in (
        ("s3cret", "must start with 'whsec_'"),
        ("whsec_not base64!", "must be base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes"),
    ):
        with pytest.raises(ValueError, match=problem) as error:
            decode_secret(bad)
        assert bad not in str(error.value)


# -- delivery ------------------------------------------------------------------------------


def test_a_wrong_secret_fails_verification_and_is_given_up_after_bounded_retries():
    with Receiver(secret=SECRET) as receiver:
        sender = fast_sender(receiver.url, secrets=[OLD_SECRET], max_attempts=3)
        sender.on_state_event(state_event())
        assert sender.flush(timeout=5)
    assert receiver.events == []
    assert receiver.bad_signatures == 3
    assert sender.dropped["retries_exhausted"] == 1
    assert sender.failed_attempts == 3


def test_delivery_resumes_in_order_after_the_receiver_was_down(caplog):
    caplog.set_level(logging.INFO, logger="hurricane_runtime.webhooks")
    receiver = Receiver().start()
    receiver.stop()  # it had a port, and now nothing listens there
    sender = fast_sender(receiver.url, max_attempts=1000)
    for index in range(5):
        sender.on_state_event(state_event(reason=f"while down {index}"))
    time.sleep(1.0)  # several failed attempts with backoff
    assert sender.failed_attempts >= 2
    assert sender.delivered == 0
    with receiver.start():
        sender.on_state_event(state_event(reason="after restart"))
        events = receiver.wait_for(6)
        assert sender.flush(timeout=5)
    assert [event["data"]["reason"] for event in events] == [
        *(f"while down {i}" for i in range(5)),
        "after restart",
    ]
    assert sum(sender.dropped.values()) == 0
    # One warning per outage, not one per attempt, and a line when it is over.
    messages = [r.getMessage() for r in caplog.records if r.name == "hurricane_runtime.webhooks"]
    assert len([m for m in messages if m.startswith("webhook delivery failing")]) == 1
    assert len([m for m in messages if m.startswith("webhook delivery works again")]) == 1


def test_server_errors_are_retried_with_the_same_id_until_the_receiver_recovers():
    with Receiver() as receiver:
        receiver.answer_status = 503
        sender = fast_sender(receiver.url, max_attempts=1000)
        sender.on_state_event(state_event(reason="first"))
        sender.on_state_event(state_event(reason="second"))
        assert receiver.wait_attempts(3) >= 3
        assert receiver.events == []
        receiver.answer_status = 200
        events = receiver.wait_for(2)
        assert sender.flush(timeout=5)
    assert [event["data"]["reason"] for event in events] == ["first", "second"]
    first_id = events[0]["_id"]
    retried = [headers for headers, _ in receiver.deliveries if headers["webhook-id"] == first_id]
    assert len(retried) >= 3  # every attempt of one event carries the same webhook-id


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status):
    with Receiver() as receiver:
        receiver.answer_status = status
        receiver.answer_headers = {"Retry-After": "1"}
        sender = fast_sender(receiver.url)  # its own backoff is 25-300 ms
        sender.on_state_event(state_event())
        assert receiver.wait_attempts(1) == 1
        first_at = time.monotonic()
        receiver.answer_status = 200
        receiver.wait_for(1, timeout=10)
        waited = time.monotonic() - first_at
        assert sender.flush(timeout=5)
    assert receiver.attempts == 2
    assert waited >= 0.9, waited  # a lower bound: a busy machine only makes it longer


def test_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    in_a_minute = datetime.fromtimestamp(now, UTC) + timedelta(seconds=60)
    http_date = in_a_minute.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds("7") == 7.0
    assert 59 <= retry_after_seconds(http_date, now=now) <= 60
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_410_gone_stops_all_sending_to_that_endpoint():
    with Receiver() as receiver:
        receiver.answer_status = 410
        sender = fast_sender(receiver.url)
        sender.on_state_event(state_event(reason="first"))
        assert receiver.wait_attempts(1) == 1
        assert sender.flush(timeout=5)
        sender.on_state_event(state_event(reason="later"))
        time.sleep(0.3)
    assert receiver.attempts == 1
    assert sender.endpoint_gone
    assert sender.dropped["endpoint_gone"] == 2


def test_a_redirect_is_a_failure_and_is_not_followed():
    """Following it would turn the POST into a GET without the event."""
    with Receiver() as receiver:
        receiver.answer_status = 302
        sender = fast_sender(receiver.url, max_attempts=2)
        sender.on_state_event(state_event())
        assert sender.flush(timeout=5)
    assert receiver.attempts == 2  # two POSTs, no GET
    assert all(headers["webhook-id"] for headers, _ in receiver.deliveries)
    assert sender.delivered == 0 and sender.dropped["retries_exhausted"] == 1


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
    assert sender.dropped["queue_full"] >= 989

    started = time.perf_counter()
    assert sender.flush(timeout=0.5) is False  # bounded: gives up, never hangs shutdown
    assert time.perf_counter() - started < 1.0


def test_a_full_queue_keeps_the_newest_events():
    receiver = Receiver().start()
    receiver.stop()
    # A long backoff: after its first failed attempt the sender waits, holding nothing, while
    # the queue overflows; flush cuts that wait short once the receiver is back.
    sender = fast_sender(receiver.url, queue_size=3, backoff_base=10, backoff_max=10)
    sender.on_state_event(state_event(reason="0"))
    deadline = time.monotonic() + 10
    while sender.failed_attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for index in range(1, 10):
        sender.on_state_event(state_event(reason=str(index)))
    with receiver.start():
        assert sender.flush(timeout=5)
        events = receiver.wait_for(3)
    assert [event["data"]["reason"] for event in events] == ["7", "8", "9"]
    assert sender.dropped["queue_full"] == 7


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
            webhook_url=receiver.url, webhook_secret=(SECRET,), project_version="3.1.0"
        )
        observers = Observers()
        installed = install(config, RuntimeState(workers=4, backlog_limit=8), observers)
        observers.notify(observers.state_changed, state_event("startup", True, "listening"))
        observers.notify(observers.state_changed, state_event("readiness", False, "draining"))
        events = receiver.wait_for(2)
        for stop in observers.server_stopping:
            stop()
        status, _, body = observers.probe_routes["/metrics"]()
    assert [(e["type"], e["data"]["status"]) for e in events] == [
        ("hurricane.startup.changed", "healthy"),
        ("hurricane.readiness.changed", "unhealthy"),
    ]
    assert installed.webhooks.delivered == 2
    assert status == 200
    text = body.decode()
    assert "hurricane_webhook_delivered_total 2.0" in text
    assert 'hurricane_webhook_dropped_total{reason="retries_exhausted"} 0.0' in text
    assert "hurricane_webhook_endpoint_gone 0.0" in text


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
    assert [(e["type"], e["data"]["status"], e["data"]["reason"]) for e in events] == [
        ("hurricane.startup.changed", "unhealthy", "start-up failed")
    ]
