"""A small TCP proxy for tests that need a network fault between a client and a real service.

Tests must never stop the shared services (PostgreSQL, Redis, RabbitMQ) to simulate an outage;
they point the client at this proxy instead and cut the path in between. The proxy runs its own
asyncio loop on a daemon thread, so synchronous tests and tests with their own loop use it alike:

    with TcpProxy(5672) as proxy:            # forwards 127.0.0.1:<proxy.port> -> 127.0.0.1:5672
        client = connect(port=proxy.port)
        proxy.cut()                          # every connection closed, new ones closed at once
        proxy.blackhole()                    # connections stay open, bytes vanish both ways
        proxy.restore()                      # new connections reach the service again

``cut`` is what a client sees when the service or a router resets connections (the client learns
at once); ``blackhole`` is a silent partition (the client learns only from its own timeouts or
heartbeats). ``restore`` does not revive connections closed or silenced before it: a real
client reconnects, which is the behaviour such tests look at.
"""

import asyncio
import threading

FORWARD = "forward"
CUT = "cut"
BLACKHOLE = "blackhole"


class TcpProxy:
    """Forward a loopback port to ``target_host:target_port`` until told to cut the path."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = FORWARD
        self.accepted = 0
        # Bytes forwarded from clients to the target: what a client sends, for tests that
        # count its frames.
        self.upstream_bytes = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None
        self._links: set[_Link] = set()

    # -- lifecycle (called from the test's thread) --------------------------------------------

    def start(self) -> "TcpProxy":
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- faults --------------------------------------------------------------------------------

    def cut(self) -> None:
        """Close every open connection and close new ones as soon as they are accepted."""
        self._call(self._set_mode(CUT))

    def blackhole(self) -> None:
        """Keep every connection open but forward nothing, in either direction."""
        self._call(self._set_mode(BLACKHOLE))

    def restore(self) -> None:
        """Forward new connections to the target again."""
        self._call(self._set_mode(FORWARD))

    @property
    def open_connections(self) -> int:
        return self._call(self._count())

    # -- the loop's side -----------------------------------------------------------------------

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._server.close()
        for link in list(self._links):
            link.close()
        await self._server.wait_closed()

    async def _set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == CUT:
            for link in list(self._links):
                link.close()
        elif mode == BLACKHOLE:
            for link in self._links:
                link.silenced = True

    async def _count(self) -> int:
        return len(self._links)

    def _count_upstream(self, size: int) -> None:
        self.upstream_bytes += size

    async def _accept(self, client_reader, client_writer) -> None:
        self.accepted += 1
        if self.mode == CUT:
            client_writer.transport.abort()
            return
        link = _Link(client_writer)
        link.silenced = self.mode == BLACKHOLE
        self._links.add(link)
        try:
            if not link.silenced:
                try:
                    server_reader, server_writer = await asyncio.open_connection(*self.target)
                except OSError:
                    return
                link.server_writer = server_writer
                if link.closed:
                    return
                await asyncio.gather(
                    link.pump(client_reader, server_writer, self._count_upstream),
                    link.pump(server_reader, client_writer),
                )
            else:
                await link.pump(client_reader, None)
        finally:
            link.close()
            self._links.discard(link)


class _Link:
    """One client connection and its upstream connection; ``silenced`` drops their bytes."""

    def __init__(self, client_writer):
        self.client_writer = client_writer
        self.server_writer = None
        self.silenced = False
        self.closed = False

    async def pump(self, reader, writer, forwarded=None) -> None:
        try:
            while not self.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if writer is not None and not self.silenced:
                    if forwarded is not None:
                        forwarded(len(data))
                    writer.write(data)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Abort both sides at once (a reset, not a polite FIN after buffered data)."""
        self.closed = True
        for writer in (self.client_writer, self.server_writer):
            if writer is not None:
                writer.transport.abort()
