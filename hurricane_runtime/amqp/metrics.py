"""Consumer metrics, named after FastStream's so that existing dashboards port.

FastStream's names with the ``hurricane_`` namespace and its ``broker`` and ``handler`` labels
(the handler label is the queue name, as in FastStream's RabbitMQ broker), plus what a
Kubernetes operator needs on top: consumers active, redeliveries seen and messages sent to the
dead-letter exchange. They live on the registry of the process's ``Metrics`` object, the same
endpoint as every other hurricane metric.
"""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

NAMESPACE = "hurricane"
BROKER = "rabbitmq"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = tuple(2.0**power for power in range(4, 26, 2))

# Values of the ``status`` label of received_processed_messages_total, as in FastStream.
ACKED = "acked"
NACKED = "nacked"  # requeued
REJECTED = "rejected"
ERROR = "error"  # the handler raised an ordinary exception (its message then follows the policy)


class ConsumerMetrics:
    """Counters and histograms bumped per message; gauges read from the supervisor on scrape."""

    def __init__(self, registry, supervisor, handler: str):
        self.handler = handler
        labels = ("broker", "handler")
        self.received = Counter(
            "received_messages",
            "Messages delivered to this consumer.",
            labels,
            namespace=NAMESPACE,
            registry=registry,
        ).labels(BROKER, handler)
        self.received_size = Histogram(
            "received_messages_size_bytes",
            "Body size of delivered messages.",
            labels,
            namespace=NAMESPACE,
            buckets=SIZE_BUCKETS,
            registry=registry,
        ).labels(BROKER, handler)
        self._processed = Counter(
            "received_processed_messages",
            "Messages whose handler finished, by status (acked, nacked, rejected, error).",
            (*labels, "status"),
            namespace=NAMESPACE,
            registry=registry,
        )
        self.processed = {
            status: self._processed.labels(BROKER, handler, status)
            for status in (ACKED, NACKED, REJECTED, ERROR)
        }
        self.duration = Histogram(
            "received_processed_messages_duration_seconds",
            "Time the handler took, successful or not.",
            labels,
            namespace=NAMESPACE,
            buckets=DURATION_BUCKETS,
            registry=registry,
        ).labels(BROKER, handler)
        self._exceptions = Counter(
            "received_processed_messages_exceptions",
            "Exceptions raised by the handler (not Ack, Reject or Requeue), by type.",
            (*labels, "exception_type"),
            namespace=NAMESPACE,
            registry=registry,
        )
        self.redeliveries = Counter(
            "received_redeliveries",
            "Deliveries of messages the broker had handed out before.",
            labels,
            namespace=NAMESPACE,
            registry=registry,
        ).labels(BROKER, handler)
        self.dead_lettered = Counter(
            "dead_lettered_messages",
            "Messages this consumer sent to the dead-letter exchange (rejected, or requeued "
            "past the delivery limit).",
            labels,
            namespace=NAMESPACE,
            registry=registry,
        ).labels(BROKER, handler)
        registry.register(_SupervisorGauges(supervisor, handler))

    def exception(self, error: BaseException) -> None:
        self._exceptions.labels(BROKER, self.handler, type(error).__name__).inc()


class _SupervisorGauges:
    """In-process and active-consumer gauges, read at scrape time."""

    def __init__(self, supervisor, handler: str):
        self.supervisor = supervisor
        self.handler = handler

    def describe(self):
        return []

    def collect(self):
        labels = ("broker", "handler")
        in_process = GaugeMetricFamily(
            f"{NAMESPACE}_received_messages_in_process",
            "Messages delivered and not yet acked, rejected or requeued.",
            labels=labels,
        )
        in_process.add_metric((BROKER, self.handler), self.supervisor.in_process)
        active = GaugeMetricFamily(
            f"{NAMESPACE}_consumers_active",
            "Consumers registered with the broker right now (0 while disconnected).",
            labels=labels,
        )
        active.add_metric((BROKER, self.handler), self.supervisor.consumers_active)
        yield in_process
        yield active
