"""The consumer's decisions that need no broker: backoff, ack fates, handler paths, errors."""

import statistics

import pytest

from hurricane_runtime.amqp import Ack, Reject, Requeue, outcomes
from hurricane_runtime.amqp.handlers import HandlerError, is_async, load_handler
from hurricane_runtime.amqp.supervisor import backoff_delay
from hurricane_runtime.amqp.topology import Topology, explain_precondition


def test_backoff_is_full_jitter_exponential_and_capped():
    for attempt in range(12):
        bound = min(5.0, 0.25 * 2**attempt)
        delays = [backoff_delay(attempt, cap=5.0) for _ in range(400)]
        assert all(0 <= delay <= bound for delay in delays)
        # Full jitter spreads over the whole range, not around the bound.
        assert min(delays) < 0.2 * bound and max(delays) > 0.8 * bound
        assert 0.35 * bound < statistics.mean(delays) < 0.65 * bound
    assert max(backoff_delay(10_000, cap=2.0) for _ in range(100)) <= 2.0


@pytest.mark.parametrize(
    ("error", "policy", "fate"),
    [
        (None, "reject_on_error", "ack"),
        (ValueError(), "reject_on_error", "reject"),
        (ValueError(), "nack_on_error", "requeue"),
        (ValueError(), "ack", "ack"),
        (Ack(), "reject_on_error", "ack"),
        (Reject(), "ack", "reject"),
        (Requeue(), "reject_on_error", "requeue"),
    ],
)
def test_handler_outcome_decides_the_fate(error, policy, fate):
    assert outcomes.decide(error, policy) == fate


def test_handler_paths_are_checked():
    assert load_handler("json.dumps") is not None
    assert is_async(load_handler("asyncio.sleep"))
    assert not is_async(load_handler("json.dumps"))
    with pytest.raises(HandlerError, match="cannot import handler 'nowhere.handle'"):
        load_handler("nowhere.handle")
    with pytest.raises(HandlerError, match="not a dotted path"):
        load_handler("handle")
    with pytest.raises(HandlerError, match="is a str, not a function"):
        load_handler("string.ascii_letters")


def test_precondition_failed_names_the_queue_and_the_argument():
    text = (
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'orders' in vhost "
        "'/': received the value 'quorum' of type 'longstr' but current is none"
    )
    assert explain_precondition(Exception(text)) == (
        "queue 'orders' already exists with a different 'x-queue-type' (declared: 'quorum'; "
        "existing: none); delete the queue or declare it with the same arguments"
    )


def test_topology_arguments():
    quorum = Topology("orders", delivery_limit=7)
    assert quorum.queue_arguments() == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "orders.dlx",
        "x-dead-letter-routing-key": "orders",
    }
    assert quorum.dead_letter_queue == "orders.dlq"
    assert quorum.bindings() == ()
    classic = Topology("jobs", queue_type="classic", exchange="events")
    assert "x-delivery-limit" not in classic.queue_arguments()
    assert classic.bindings() == ("jobs",)
