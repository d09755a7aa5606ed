"""The message a handler receives: plain data, no broker objects.

Handlers get a copy of what they need, never the client library's message: a sync handler runs
on a worker thread, and acking from there would race the event loop that owns the channel.
The runtime acks, rejects or requeues once the handler has finished (see ``outcomes``).
"""

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    body: bytes
    routing_key: str = ""
    exchange: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    content_encoding: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    message_id: str | None = None
    redelivered: bool = False
    # Times the broker handed this message back before (quorum queues count it in the
    # ``x-delivery-count`` header); 0 on a first delivery.
    delivery_count: int = 0

    def text(self) -> str:
        return self.body.decode(self.content_encoding or "utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def from_delivered(cls, delivered) -> "Message":
        """Copy what handlers need out of an aiormq ``DeliveredMessage`` (a Basic.Deliver)."""
        deliver = delivered.delivery
        properties = delivered.header.properties
        headers = dict(properties.headers or {})
        count = headers.get("x-delivery-count", 0)
        return cls(
            body=delivered.body,
            routing_key=deliver.routing_key or "",
            exchange=deliver.exchange or "",
            headers=headers,
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            correlation_id=properties.correlation_id,
            reply_to=properties.reply_to,
            message_id=properties.message_id,
            redelivered=bool(deliver.redelivered),
            delivery_count=count if isinstance(count, int) else 0,
        )
