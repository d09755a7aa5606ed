"""Per-request context (request id, W3C traceparent) for logs and outgoing calls.

The server runs each Django call in a fresh ``contextvars.Context`` and binds these first,
so a value set for one request can never leak into the next one on the same worker thread.
"""

import contextvars

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)
