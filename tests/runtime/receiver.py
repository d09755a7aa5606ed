"""A real webhook receiver on a loopback port; verifies signatures as the docs say."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_SKEW = 300  # seconds a signed timestamp may be old (or ahead) before it is a replay


def verify_signature(secret: str, headers, body: bytes, now: float | None = None) -> bool:
    """The receiver side of signing, exactly as documented for projects."""
    timestamp = headers.get("X-Hurricane-Timestamp", "")
    signature = headers.get("X-Hurricane-Signature", "")
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return False
    if abs((now or time.time()) - int(timestamp)) > MAX_SKEW:
        return False  # too old: a replay, or a clock far off
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), signature)


class Receiver:
    """Collects POSTed events; can answer an error status for a while, or go down and come back."""

    def __init__(self, port: int = 0, secret: str | None = None):
        self.port = port
        self.secret = secret
        self.events: list[dict] = []  # in arrival order, duplicates dropped as documented
        self.seen_ids: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.attempts = 0
        self.answer_status = 200  # set to 500/400 to make it fail
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hurricane"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._changed:
                    receiver.attempts += 1
                    status = receiver.answer_status
                    signed = receiver.secret is None or verify_signature(
                        receiver.secret, self.headers, body
                    )
                    if status == 200 and not signed:
                        receiver.bad_signatures += 1
                        status = 401
                    if status == 200:
                        event = json.loads(body)
                        # At least once: a retry after a timeout may repeat an event.
                        if event["id"] in receiver.seen_ids:
                            receiver.duplicates += 1
                        else:
                            receiver.seen_ids.add(event["id"])
                            receiver.events.append(event)
                    receiver._changed.notify_all()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/somewhere-else")
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

    def __enter__(self):
        return self if self._server is not None else self.start()

    def __exit__(self, *exc):
        self.stop()
