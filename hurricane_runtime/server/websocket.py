"""Websockets on the app port: the ASGI ``websocket`` scope on top of Tornado's RFC 6455 code.

Tornado's ``WebSocketProtocol13`` does the framing: masking, fragments, control frames, the
maximum message size (close 1009), and one pong at a time however fast a client pings. One
``Pinger`` per process pings every open socket at an interval and closes those that stop
answering. We add what RFC 6455 asks of a server and Tornado leaves out:
invalid UTF-8 in a text message closes with 1007 (Tornado drops the socket without a close
frame), a client frame without a mask closes with 1002, and a client that pings more than
``PING_FLOOD_LIMIT`` times a second is closed with 1008. Every hostile frame ends only its own
socket.

The project's ASGI application (Channels' router) decides before the handshake: the server
sends ``websocket.connect`` and waits for ``websocket.accept`` (101, with the chosen
subprotocol) or ``websocket.close`` (403). ``send`` waits until the frame reached the socket,
so a slow client slows its producer instead of filling memory, and a full inbox stops reading
from a client whose application does not keep up.

An open socket costs about 17 KiB of memory with a Channels consumer on the Redis pub/sub
layer, about 10 KiB of which are the consumer and its subscription (docs/benchmarks.md): what
is ours per socket is kept small, see ``WebSocketSession``, ``Pinger`` and ``_lighten``.
"""

import asyncio
import contextlib
import contextvars
import functools
import logging
import random
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from tornado.httputil import HTTPHeaders, HTTPMessageDelegate, ResponseStartLine
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketProtocol13, _WebSocketParams

from ..events import RequestRecord

logger = logging.getLogger("hurricane_runtime")

WEBSOCKET_ROUTE = "<websocket>"  # route label of handshakes in request metrics
INBOX_LIMIT = 16  # received messages waiting for the application before we stop reading
PING_FLOOD_LIMIT = 50  # pings per second a client may send
SERVICE_RESTART = 1012
BATCH_INTERVAL = 0.1  # seconds between two batches of 1012 closes during the drain
PING_BATCH = 200  # sockets pinged in one pass of the event loop
_NO_STATUS, _ABNORMAL = 1005, 1006
TEXT, BINARY = 0x1, 0x2  # opcodes


class _Protocol(WebSocketProtocol13):
    """Tornado's protocol plus the checks RFC 6455 requires of a server."""

    # Tornado's protocol sets 29 attributes: one more in the instance dict would pass
    # CPython's limit for key-sharing dicts (30) and cost 1.3 KiB per socket.
    __slots__ = ("_frame_start",)

    def __init__(self, handler, mask_outgoing, params) -> None:
        super().__init__(handler, mask_outgoing, params)
        self._frame_start = False

    # Both overrides add no coroutine of their own to the chain an idle socket keeps waiting in
    # (about 200 bytes each): ``_receive_frame`` only marks the next read as a frame header,
    # ``_read_bytes`` is Tornado's two lines plus the mask check.

    def _receive_frame(self):
        self._frame_start = True
        return super()._receive_frame()

    async def _read_bytes(self, n: int) -> bytes:
        data = await self.stream.read_bytes(n)
        self._wire_bytes_in += n
        if self._frame_start:
            self._frame_start = False
            if not data[1] & 0x80:
                self.close(1002, "client frames must be masked")
                self._abort()
                raise StreamClosedError()  # ends the receive loop
        return data

    def _handle_message(self, opcode: int, data: bytes):
        if opcode == 0x1 and not self.client_terminated:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.close(1007, "invalid UTF-8")
                self._abort()
                return None
        return super()._handle_message(opcode, data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.server_terminated:
            self.handler.closing(code)
        super().close(code, reason)


class _ShortQueue(list):
    """A deque's interface (Tornado's ``IOStream`` uses these methods) on a plain list."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


def _lighten(stream) -> None:
    """Swap the two write queues of a websocket's ``IOStream`` for lists.

    Tornado keeps a stream's pending writes and their futures in two deques of 760 bytes each,
    even empty. An idle websocket has nothing queued and a busy one a few frames (``send``
    waits for each), so lists of 56 bytes do the same for 1.4 KiB less per open socket.
    """
    stream._write_futures = _ShortQueue(stream._write_futures)
    stream._write_buffer._buffers = _ShortQueue(stream._write_buffer._buffers)


@functools.lru_cache(maxsize=8)
def _protocol_params(max_message_size: int) -> _WebSocketParams:
    """The same for every socket: one object for all of them."""
    return _WebSocketParams(
        ping_interval=None,  # the gateway's Pinger pings every socket from one timer
        max_message_size=max_message_size,
        compression_options=None,
    )


class WebSocketSession(HTTPMessageDelegate):
    """One websocket, from its upgrade request to the end of its application.

    Thousands of these sit idle in a process, so a session keeps only what an open socket
    needs: slots instead of an instance dict, a list as its inbox (an empty deque takes 760
    bytes), and no reference to the HTTP request of the upgrade once it is answered.
    """

    __slots__ = (
        "gateway",
        "conn",
        "remote_addr",
        "scope",
        "path",
        "protocol",
        "inbox",
        "_inbox_waiter",
        "_space_waiter",
        "_decided",
        "_decision_timer",
        "task",
        "reader",
        "accepted",
        "closed",
        "close_code",
        "status",
        "started_at",
        "awaiting_pong",
        "_pings",
    )

    def __init__(self, gateway, conn, remote_addr: str, scope: dict, path: str):
        self.gateway = gateway
        self.conn = conn  # the upgrade request's connection, until it is answered
        self.remote_addr = remote_addr
        self.scope = scope
        self.path = path
        self.protocol: _Protocol | None = None
        self.inbox: list[dict] = [{"type": "websocket.connect"}]
        self._inbox_waiter: asyncio.Future | None = None
        self._space_waiter: asyncio.Future | None = None
        self._decided: asyncio.Future | None = None  # Tornado waits on it during the handshake
        self._decision_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None  # the application
        self.reader: asyncio.Task | None = None  # Tornado's frame loop, once accepted
        self.accepted = False
        self.closed = False  # the socket is gone (or the handshake was refused)
        self.close_code: int | None = None  # what ended the socket, for metrics
        self.status = 0
        self.started_at = time.perf_counter()
        self.awaiting_pong = False  # our last ping has not been answered yet
        self._pings: tuple[float, int] = (0.0, 0)  # pings received from the client

    # -- the upgrade request (HTTPMessageDelegate) ----------------------------------------

    def headers_received(self, start_line, headers):
        """Run the application until it accepts or refuses; Tornado waits for this."""
        if headers.get("Sec-WebSocket-Version") != "13":
            self._refuse(426, "Upgrade Required", {"Sec-WebSocket-Version": "13"})
            return None
        if not headers.get("Sec-WebSocket-Key") or not headers.get("Host"):
            self._refuse(400, "Bad Request")
            return None
        loop = asyncio.get_running_loop()
        self._decided = loop.create_future()
        self.task = loop.create_task(self._run(), context=contextvars.Context())
        self.gateway.track(self.task)
        # An application that neither accepts nor refuses must not hold the socket forever.
        self._decision_timer = loop.call_later(self.gateway.config.body_timeout, self._undecided)
        return self._decided

    def _undecided(self) -> None:
        if not self.status:
            logger.warning(
                "websocket application on %s did not accept or refuse within %gs",
                self.path,
                self.gateway.config.body_timeout,
            )
            self._refuse(503, "Service Unavailable")
            self.task.cancel()

    def data_received(self, chunk):
        pass  # an upgrade request has no body

    def finish(self):
        pass

    def on_connection_close(self):
        self._client_gone(_ABNORMAL)

    # -- the application --------------------------------------------------------------------

    async def _run(self) -> None:
        """Run the application; whatever way it ends, the client gets an answer."""
        close_code, refusal = 1000, (403, "Forbidden")  # returned without accepting: refused
        try:
            await self.gateway.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:  # the drain timeout ran out
            close_code, refusal = SERVICE_RESTART, (503, "Service Unavailable")
            raise
        except Exception:
            logger.exception("websocket application failed on %s", self.path)
            close_code, refusal = 1011, (500, "Internal Server Error")
        finally:
            if not self.accepted:
                self._refuse(*refusal)
            elif not self.closed and not self.protocol.is_closing():
                self.protocol.close(close_code)

    async def receive(self) -> dict:
        while not self.inbox:
            if self.closed and self.accepted:
                return {"type": "websocket.disconnect", "code": self.close_code or _ABNORMAL}
            self._inbox_waiter = asyncio.get_running_loop().create_future()
            await self._inbox_waiter
        message = self.inbox.pop(0)
        space = self._space_waiter
        if space is not None and len(self.inbox) < INBOX_LIMIT and not space.done():
            space.set_result(None)
        return message

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            if not self.accepted and not self.closed:
                self._accept(message)
        elif kind == "websocket.send":
            if self.protocol is None or self.closed or self.protocol.is_closing():
                return  # closing or gone; the application learns it from receive()
            text = message.get("text")
            # One frame straight onto the stream: its future resolves once the socket took
            # it. (``write_message`` adds a task per message for the same future.)
            try:
                if text is not None:
                    written = self.protocol._write_frame(True, TEXT, text.encode())
                else:
                    written = self.protocol._write_frame(True, BINARY, message.get("bytes") or b"")
                await written
            except StreamClosedError:
                return
            self.gateway.stats.messages_out += 1
        elif kind == "websocket.close":
            if not self.accepted:
                self._refuse(403, "Forbidden")
            elif not self.closed:
                self.protocol.close(message.get("code") or 1000, message.get("reason") or None)
        else:
            raise ValueError(f"unexpected ASGI message {kind!r} on a websocket")

    # -- handshake ----------------------------------------------------------------------------

    def _accept(self, message: dict) -> None:
        """Answer 101, take the socket away from HTTP and start reading frames."""
        headers = self.scope_headers()
        key = headers.get("Sec-WebSocket-Key")
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {WebSocketProtocol13.compute_accept_value(key)}",
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            if subprotocol not in self.scope["subprotocols"]:
                raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        for name, value in message.get("headers") or ():
            name, value = bytes(name).decode("latin-1"), bytes(value).decode("latin-1")
            if "\r" in name + value or "\n" in name + value:
                raise ValueError("newline in a websocket accept header")
            if name.lower() not in ("sec-websocket-protocol", "sec-websocket-accept"):
                lines.append(f"{name}: {value}")
        stream = self.conn.detach()
        self.conn = None  # the request's headers and connection objects can go now
        _lighten(stream)
        stream.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        params = _protocol_params(self.gateway.config.websocket_max_message_size)
        protocol = self.protocol = _Protocol(self, mask_outgoing=False, params=params)
        protocol.stream = stream
        protocol.selected_subprotocol = subprotocol
        self.accepted = True
        self.status = 101
        self.gateway.opened(self)
        self._record()
        # The reader ends with the socket, and the session is in the gateway's open websockets
        # until then: kept here, not among the gateway's tasks (a done callback each).
        self.reader = asyncio.get_running_loop().create_task(protocol._receive_frame_loop())
        self._decide()

    def _refuse(self, status: int, reason: str, extra: dict | None = None) -> None:
        """An HTTP answer instead of the upgrade; the connection closes after it."""
        if self.status:
            return
        self.status = status
        self.closed = True
        body = f"{reason}\n".encode()
        headers = HTTPHeaders(
            {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
        )
        headers["Connection"] = "close"
        for name, value in (extra or {}).items():
            headers[name] = value
        conn = self.conn
        try:
            conn.write_headers(ResponseStartLine("HTTP/1.1", status, reason), headers, body)
            conn.finish()
            conn.stream.write(b"").add_done_callback(lambda _: conn.close())
        except Exception:
            conn.close()
        self._record()
        # An application still awaiting receive() (Channels' consumers do after refusing)
        # learns that the connection is over, so its task ends instead of holding the drain.
        self.close_code = self.close_code or _ABNORMAL
        self._deliver({"type": "websocket.disconnect", "code": self.close_code})
        self._decide()

    def _decide(self) -> None:
        if self._decision_timer is not None:
            self._decision_timer.cancel()
            self._decision_timer = None
        decided = self._decided
        if decided is not None:
            self._decided = None  # Tornado holds it until it resumes
            if not decided.done():
                decided.set_result(None)

    def scope_headers(self) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in self.scope["headers"]:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        return headers

    def _record(self) -> None:
        observers = self.gateway.observers
        if observers.request_finished:
            record = RequestRecord(
                method="GET",
                route=WEBSOCKET_ROUTE,
                path=self.path,
                status=self.status,
                duration=time.perf_counter() - self.started_at,
                queue_wait=0.0,
                request_id="",
                remote_addr=self.remote_addr,
                response_bytes=0,
            )
            observers.notify(observers.request_finished, record)

    # -- frames (called by the protocol) ------------------------------------------------------

    def on_message(self, message):
        self.gateway.stats.messages_in += 1
        if isinstance(message, str):
            self._deliver({"type": "websocket.receive", "text": message})
        else:
            self._deliver({"type": "websocket.receive", "bytes": message})
        if len(self.inbox) >= INBOX_LIMIT:
            # Tornado waits for this before reading the next frame: backpressure on the client.
            self._space_waiter = asyncio.get_running_loop().create_future()
            return self._space_waiter
        return None

    def on_ping(self, data: bytes) -> None:
        now = time.monotonic()
        window_start, count = self._pings
        if now - window_start >= 1.0:
            self._pings = (now, 1)
            return
        self._pings = (window_start, count + 1)
        if count + 1 > PING_FLOOD_LIMIT and not self.protocol.is_closing():
            logger.info("closing a websocket on %s: more than %d pings a second", self.path, count)
            self.protocol.close(1008, "too many pings")

    def on_pong(self, data: bytes) -> None:
        self.awaiting_pong = False

    def keep_alive(self) -> None:
        """Ping, or close if the previous ping went unanswered for a whole interval."""
        protocol = self.protocol
        if protocol is None or self.closed or protocol.is_closing():
            return
        if self.awaiting_pong:
            protocol.close(1000, "ping timed out")
            return
        self.awaiting_pong = True
        with contextlib.suppress(StreamClosedError):  # the reader sees it and ends the session
            protocol.write_ping(b"")

    def closing(self, code: int | None) -> None:
        """The server sends a close frame (``code`` None: without a status code)."""
        if self.close_code is None:
            self.close_code = code or _NO_STATUS

    def on_ws_connection_close(self, close_code=None, close_reason=None) -> None:
        """The socket is closed; without any close frame sent by us, the client's code counts."""
        if self.close_code is None:
            self.close_code = close_code or _ABNORMAL
        self._client_gone(self.close_code, close_reason)

    def log_exception(self, typ, value, tb) -> None:
        logger.error("error on the websocket %s", self.path, exc_info=(typ, value, tb))

    def _client_gone(self, code: int, reason: str | None = None) -> None:
        if self.closed and not self.accepted:
            self._decide()
            return
        if self.closed:
            return
        self.closed = True
        if self.close_code is None:
            self.close_code = code
        if self.accepted:
            self.gateway.closed(self)
        message = {"type": "websocket.disconnect", "code": self.close_code}
        if reason:
            message["reason"] = reason
        self._deliver(message)
        if self._space_waiter is not None and not self._space_waiter.done():
            self._space_waiter.set_result(None)
        self._decide()

    def _deliver(self, message: dict) -> None:
        self.inbox.append(message)
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- drain --------------------------------------------------------------------------------

    def restart(self) -> None:
        """Close with 1012: the client reconnects, to another pod."""
        if self.protocol is not None and not self.closed and not self.protocol.is_closing():
            self.protocol.close(SERVICE_RESTART, "service restart")


class Pinger:
    """One timer pings every open websocket, every ``interval`` seconds.

    Pings keep idle sockets alive behind proxies and ingresses that cut silent connections,
    and find clients that vanished without a close. Tornado would run a task with its own
    timer per socket for that (about 1.5 KiB each); this is one timer for all of them. A socket
    gets its first ping within one interval of opening, and one that has not answered a ping
    by the next tick is closed (1000, "ping timed out", as Tornado does).
    """

    def __init__(self, sessions: set, interval: float):
        self.sessions = sessions
        self.interval = interval
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Run while there are sockets; cheap to call for every socket that opens."""
        if self._timer is None and self.interval > 0:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        self._ping(list(self.sessions), 0)
        if self.sessions:
            self.start()

    def _ping(self, sessions: list, start: int) -> None:
        """Ping ``PING_BATCH`` sockets, then let the loop run before the next batch.

        Thousands of pings in one go would hold up every other socket's messages meanwhile.
        """
        end = start + PING_BATCH
        for session in sessions[start:end]:
            session.keep_alive()
        if end < len(sessions):
            asyncio.get_running_loop().call_soon(self._ping, sessions, end)


async def close_spread(sessions: list, window: float) -> None:
    """Close ``sessions`` with 1012 in shuffled batches spread over ``window`` seconds.

    Every client reconnects at once when every socket closes at once: a thundering herd onto
    the pods that stay. Batches every ``BATCH_INTERVAL``, each fired at a random moment of its
    slot, spread the reconnects over the window instead.
    """
    sessions = list(sessions)
    random.shuffle(sessions)
    if not sessions:
        return
    batches = max(1, min(len(sessions), int(window / BATCH_INTERVAL)))
    slot = window / batches
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index in range(batches):
        fire_at = start + index * slot + random.uniform(0, slot / 2)
        delay = fire_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for session in sessions[index::batches]:
            session.restart()


class WebSocketStats:
    """Websocket counters, kept as plain numbers and read by the metrics at scrape time."""

    def __init__(self):
        self.open = 0
        self.messages_in = 0
        self.messages_out = 0
        self.closed_by_code: dict[str, int] = {}

    def closed(self, code: int | None) -> None:
        label = close_code_label(code)
        self.closed_by_code[label] = self.closed_by_code.get(label, 0) + 1


def close_code_label(code: int | None) -> str:
    """Bounded label values: RFC 6455 codes as they are, application ranges as a class."""
    if code is None:
        return "1006"
    if 1000 <= code < 3000:
        return str(code)
    if 3000 <= code < 4000:
        return "3xxx"
    if 4000 <= code < 5000:
        return "4xxx"
    return "other"


class WebSocketCollector:
    """Websocket metrics, read from ``WebSocketStats`` at scrape time."""

    def __init__(self, stats: WebSocketStats):
        self.stats = stats

    def describe(self):
        return []

    def collect(self):
        stats = self.stats
        yield GaugeMetricFamily("hurricane_websockets_open", "Open websockets.", value=stats.open)
        closed = CounterMetricFamily(
            "hurricane_websocket_connections_closed",
            "Closed websockets by close code (application codes by range: 3xxx, 4xxx).",
            labels=("code",),
        )
        for code, count in sorted(stats.closed_by_code.items()):
            closed.add_metric((code,), count)
        yield closed
        messages = CounterMetricFamily(
            "hurricane_websocket_messages",
            "Websocket messages received from clients (in) and sent to them (out).",
            labels=("direction",),
        )
        messages.add_metric(("in",), stats.messages_in)
        messages.add_metric(("out",), stats.messages_out)
        yield messages
