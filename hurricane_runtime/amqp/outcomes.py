"""How a handler's result becomes an ack, a reject or a requeue.

A handler that returns normally has its message acked. A handler that raises has its message
dealt with by the ack policy (default: rejected without requeue, so it goes to the dead-letter
queue instead of looping hot). A handler that needs a different fate for one message raises one
of the three exceptions below; they are decisions, not errors, and are not counted as
exceptions in the metrics.
"""


class Outcome(Exception):
    """Base of the explicit decisions a handler can raise."""


class Ack(Outcome):
    """Acknowledge the message: it is done, even though the handler stopped early."""


class Reject(Outcome):
    """Reject without requeue: the broker dead-letters the message."""


class Requeue(Outcome):
    """Return the message to the queue for another attempt (bounded by the delivery limit)."""


ACK = "ack"
REJECT = "reject"
REQUEUE = "requeue"

EXPLICIT = ((Ack, ACK), (Reject, REJECT), (Requeue, REQUEUE))

# Ack policies, named after FastStream's: what happens to a message when the handler raises
# an ordinary exception, and when the ack is sent.
REJECT_ON_ERROR = "reject_on_error"  # default: errors go to the dead-letter queue
NACK_ON_ERROR = "nack_on_error"  # errors are requeued (retried up to the delivery limit)
ACK_ON_ERROR = "ack"  # ack after the handler, even when it raised (errors are only logged)
ACK_FIRST = "ack_first"  # ack on receipt, before the handler runs: at most once
ACK_POLICIES = (REJECT_ON_ERROR, NACK_ON_ERROR, ACK_ON_ERROR, ACK_FIRST)

ON_ERROR = {REJECT_ON_ERROR: REJECT, NACK_ON_ERROR: REQUEUE, ACK_ON_ERROR: ACK, ACK_FIRST: ACK}


def decide(error: BaseException | None, policy: str) -> str:
    """The fate (ACK, REJECT or REQUEUE) of a message whose handler ended with ``error``."""
    if error is None:
        return ACK
    for kind, fate in EXPLICIT:
        if isinstance(error, kind):
            return fate
    return ON_ERROR[policy]
