"""A real webhook receiver on a loopback port; verifies with the ``standardwebhooks`` package.

The receiver does what docs/observability.md tells projects to do: verify the raw body with
``standardwebhooks.Webhook(secret).verify(body, headers)`` (the Standard Webhooks reference
library, not our code), answer 401 when that fails, and drop duplicates by ``webhook-id``.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    """Collects POSTed events; can answer any status for a while, or go down and come back.

    ``events`` holds the verified payloads in arrival order, each with its ``webhook-id`` under
    ``"_id"``; ``deliveries`` holds every attempt's raw (headers with lower-case names, body),
    verified or not.
    """

    def __init__(self, port: int = 0, secret: str | None = None):
        self.port = port
        self.secret = secret
        self.events: list[dict] = []  # in arrival order, duplicates dropped as documented
        self.deliveries: list[tuple[dict, bytes]] = []
        self.seen_ids: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.attempts = 0
        self.answer_status = 200  # set to 500/410/302 to make it fail
        self.answer_headers: dict[str, str] = {}
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hurricane"

    def verify(self, headers: dict, body: bytes) -> dict | None:
        """The payload when the Standard Webhooks signature holds, else None."""
        try:
            return Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._changed:
                    receiver.attempts += 1
                    receiver.deliveries.append((headers, body))
                    status = receiver.answer_status
                    if receiver.secret is None:
                        payload = json.loads(body)
                    else:
                        payload = receiver.verify(headers, body)
                    if 200 <= status < 300 and payload is None:
                        receiver.bad_signatures += 1
                        status = 401
                    if 200 <= status < 300:
                        # At least once: a retry after a timeout may repeat an event.
                        event_id = self.headers["webhook-id"]
                        if event_id in receiver.seen_ids:
                            receiver.duplicates += 1
                        else:
                            receiver.seen_ids.add(event_id)
                            receiver.events.append({**payload, "_id": event_id})
                    receiver._changed.notify_all()
                    extra = dict(receiver.answer_headers)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/somewhere-else")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):  # only a followed redirect would get here
                with receiver._changed:
                    receiver.attempts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Wait until ``count`` events arrived; return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)

    def wait_attempts(self, count: int, timeout: float = 10.0) -> int:
        """Wait until ``count`` attempts arrived (delivered or not); return how many did."""
        with self._changed:
            self._changed.wait_for(lambda: self.attempts >= count, timeout)
            return self.attempts

    def __enter__(self):
        return self if self._server is not None else self.start()

    def __exit__(self, *exc):
        self.stop()
