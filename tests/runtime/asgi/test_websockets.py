"""Websockets through ``serve --websockets``: the test project's Channels consumers, for real.

Clients are the ``websockets`` library (correct RFC 6455) and, for hostile frames, a plain
socket that writes frames by hand.
"""

import asyncio
import re
import socket
import struct
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from ws_helpers import BINARY, CLOSE, ORIGIN, PING, PONG, TEXT, RawWebSocket, frame, ws_url

WEBSOCKETS = ("--websockets",)


def metric(served, name: str, labels: str = "") -> float:
    """The value of one sample on the metrics endpoint (0 when absent)."""
    status, body = served.probe_get("/metrics")
    assert status == 200
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+]+)"
    found = re.search(pattern, body.decode())
    return float(found.group(1)) if found else 0.0


def test_echo_text_and_binary_with_a_subprotocol(start_serve):
    served = start_serve(*WEBSOCKETS)

    async def talk():
        url = ws_url(served, "/ws/echo/")
        async with connect(url, origin=ORIGIN, subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xffbinary")
            assert await ws.recv() == b"\x00\xffbinary"
        async with connect(url, origin=ORIGIN) as ws:
            assert ws.subprotocol is None  # none offered, none chosen

    asyncio.run(talk())


def test_refusing_before_accept_answers_403_and_the_origin_check_refuses_other_sites(start_serve):
    served = start_serve(*WEBSOCKETS)

    async def refused(path, origin):
        with pytest.raises(InvalidStatus) as error:
            async with connect(ws_url(served, path), origin=origin):
                pass
        return error.value.response.status_code

    assert asyncio.run(refused("/ws/echo/?reject", ORIGIN)) == 403
    assert asyncio.run(refused("/ws/echo/", "http://evil.example")) == 403
    assert asyncio.run(refused("/ws/nowhere/", ORIGIN)) in (403, 500)  # no route: refused
    # An ordinary request still reaches Django; the app is unaffected.
    assert served.get("/json/")[0] == 200


def test_an_application_that_never_decides_is_refused_after_the_body_timeout(start_serve):
    served = start_serve(*WEBSOCKETS, "--body-timeout", "1")
    started = time.monotonic()
    raw = RawWebSocket(served.port, "/ws/echo/?hang")
    assert raw.status == 503
    assert time.monotonic() - started < 5
    raw.close()
    assert "did not accept or refuse within 1s" in served.output()


def test_close_codes_both_ways(start_serve):
    served = start_serve(*WEBSOCKETS)

    async def talk():
        url = ws_url(served, "/ws/echo/")
        async with connect(url, origin=ORIGIN) as ws:
            await ws.send("close:4001")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4001
        async with connect(url, origin=ORIGIN) as ws:
            await ws.close(code=4002, reason="client leaves")

    asyncio.run(talk())
    deadline = time.monotonic() + 10
    while "disconnected with code 4002" not in served.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "echo consumer disconnected with code 4002" in served.output()
    assert metric(served, "hurricane_websocket_connections_closed_total", 'code="4xxx"') == 2
    assert metric(served, "hurricane_websockets_open") == 0


def test_metrics_count_open_sockets_and_messages_and_the_access_log_has_the_handshake(start_serve):
    served = start_serve(*WEBSOCKETS)

    async def talk():
        async with connect(ws_url(served, "/ws/echo/"), origin=ORIGIN) as ws:
            for index in range(3):
                await ws.send(f"m{index}")
                await ws.recv()
            assert metric(served, "hurricane_websockets_open") == 1
            await ws.close(1000)

    asyncio.run(talk())
    time.sleep(0.3)
    assert metric(served, "hurricane_websocket_messages_total", 'direction="in"') == 3
    assert metric(served, "hurricane_websocket_messages_total", 'direction="out"') == 3
    assert metric(served, "hurricane_websocket_connections_closed_total", 'code="1000"') == 1
    assert metric(served, "hurricane_websockets_open") == 0
    assert re.search(r"GET /ws/echo/ 101 ", served.output())


@pytest.mark.parametrize(
    ("hostile", "code"),
    [
        (frame(TEXT, b"x" * 70_000), 1009),  # over --websocket-max-message-size 64K
        (frame(TEXT, b"\xff\xfe not UTF-8"), 1007),
        (frame(TEXT, b"unmasked", mask=False), 1002),
        (b"".join(frame(PING, b"p") for _ in range(500)), 1008),  # a ping flood
    ],
    ids=["oversized", "bad-utf8", "unmasked", "ping-flood"],
)
def test_a_hostile_frame_closes_only_its_own_socket(start_serve, hostile, code):
    served = start_serve(*WEBSOCKETS, "--websocket-max-message-size", "64K")

    async def bystander_and_hostile():
        async with connect(ws_url(served, "/ws/echo/"), origin=ORIGIN) as bystander:
            raw = RawWebSocket(served.port)
            assert raw.status == 101
            raw.send(hostile)
            assert await asyncio.to_thread(raw.close_code) == code
            assert await asyncio.to_thread(raw.closed_by_server)
            raw.close()
            await bystander.send("still here")
            assert await bystander.recv() == "still here"

    asyncio.run(bystander_and_hostile())
    assert served.proc.poll() is None


def test_pings_keep_idle_sockets_alive_and_a_silent_client_is_closed(start_serve):
    served = start_serve(*WEBSOCKETS, "--websocket-ping-interval", "0.3")
    raw = RawWebSocket(served.port)
    raw.sock.settimeout(5)
    opcode, payload = raw.read_frame()
    assert opcode == PING
    raw.send(frame(PONG, payload))
    assert raw.read_frame()[0] == PING  # answered: the socket stays and is pinged again
    # This client stops answering pings: the server gives up after one interval.
    assert raw.close_code(timeout=5) == 1000
    raw.close()


def test_send_waits_for_a_client_that_does_not_read(start_serve):
    served = start_serve(*WEBSOCKETS)
    raw = RawWebSocket(served.port, "/ws/flood/")
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.send(frame(TEXT, b"400:262144"))  # 400 messages of 256 KiB: 100 MiB if nothing waited
    time.sleep(1.5)
    sent_while_stalled = metric(served, "hurricane_websocket_messages_total", 'direction="out"')
    print("messages sent while the client did not read:", sent_while_stalled)
    assert sent_while_stalled < 60, sent_while_stalled  # socket buffers hold a few MiB at most
    # Reading lets the producer go on: every message arrives.
    received = 0
    raw.sock.settimeout(20)
    while received < 400:
        opcode, payload = raw.read_frame()
        assert opcode == BINARY and len(payload) == 262144
        received += 1
    raw.send(frame(CLOSE, struct.pack("!H", 1000)))
    raw.close()
    assert metric(served, "hurricane_websocket_messages_total", 'direction="out"') == 400


def test_upgrades_are_plain_requests_without_the_websockets_option(start_serve):
    served = start_serve()
    raw = RawWebSocket(served.port)
    assert raw.status == 404  # Django answers: no HTTP view at /ws/echo/
    raw.close()


def test_a_refused_handshake_leaves_nothing_for_the_drain_to_wait_for(start_serve):
    served = start_serve(*WEBSOCKETS, "--shutdown-delay", "0", "--drain-timeout", "10")

    async def refuse():
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(served, "/ws/echo/?reject"), origin=ORIGIN):
                pass

    asyncio.run(refuse())
    began = time.monotonic()
    served.signal()
    assert served.wait_exit(30) == 0, served.output()
    took = time.monotonic() - began
    assert took < 5, f"stop took {took:.1f}s after one refused handshake (drain timeout 10 s)"
