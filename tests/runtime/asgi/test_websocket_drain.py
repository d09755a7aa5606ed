"""SIGTERM with websockets open and async views running: no reconnect storm, no lost view."""

import asyncio
import time

from websockets.asyncio.client import connect
from ws_helpers import ORIGIN, ws_url

SOCKETS = 20


async def get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return int(data.split(b" ", 2)[1]) if data else 0


def test_sigterm_closes_websockets_with_1012_spread_over_the_drain_window(start_serve):
    served = start_serve("--websockets", "--shutdown-delay", "1", "--drain-timeout", "4")

    async def scenario():
        sockets = [
            await connect(ws_url(served, "/ws/echo/"), origin=ORIGIN) for _ in range(SOCKETS)
        ]
        view = asyncio.create_task(get(served.port, "/async/sleep/?seconds=2.5"))
        await asyncio.sleep(0.3)
        signalled = time.monotonic()
        served.signal()
        ready = await asyncio.to_thread(served.probe, "/ready")

        async def closed(ws):
            await ws.wait_closed()
            return ws.close_code, time.monotonic() - signalled

        closes = await asyncio.gather(*(closed(ws) for ws in sockets))
        return ready, closes, await view

    (ready_status, ready_body), closes, view_status = asyncio.run(scenario())
    assert ready_status == 503 and "draining" in ready_body["reasons"]
    assert [code for code, _ in closes] == [1012] * SOCKETS
    moments = sorted(moment for _, moment in closes)
    # Nothing closes during the shutdown delay (load balancers still send traffic), all close
    # inside the drain window, and not at once: spread over its first half in batches.
    assert moments[0] >= 0.9, moments
    assert moments[-1] <= 1 + 4, moments
    assert moments[-1] - moments[0] >= 0.5, moments
    assert len({round(moment, 1) for moment in moments}) >= 4, moments
    assert view_status == 200  # the async view in flight had the drain timeout to finish
    assert served.wait_exit(30) == 0
    assert "closing 20 websockets over" in served.output()


def test_an_async_view_longer_than_the_drain_timeout_is_cancelled(start_serve):
    served = start_serve("--drain-timeout", "1")

    async def scenario():
        view = asyncio.create_task(get(served.port, "/async/sleep/?seconds=30&tag=long"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        served.signal()
        await view
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 5
    assert served.wait_exit(30) == 1  # the drain timed out: said so by the exit code
    assert "async view cancelled: long" in served.output()
