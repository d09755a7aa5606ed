"""The same ASGI application answers the same through ``serve`` and through uvicorn.

uvicorn is the reference ASGI server here: for each request the status, the headers the
application chose and the body must match; for websockets the handshake answer, the chosen
subprotocol, the echoed frames and the close codes. Framing headers (Date, Server,
Content-Length, Transfer-Encoding, Connection) and the request id differ by design.
"""

import asyncio
import http.client
import shutil
import subprocess
import sys
import time

import pytest
from conftest import TESTPROJECT, base_env, free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from ws_helpers import ORIGIN

FRAMING = {"date", "server", "content-length", "transfer-encoding", "connection", "x-request-id"}
REQUESTS = [
    ("GET", "/json/", None),
    ("GET", "/async/status/201/", None),
    ("GET", "/async/status/204/", None),
    ("HEAD", "/async/status/200/", None),
    ("POST", "/async/echo/", b"some body \x00\xff"),
    ("GET", "/async/error/", None),
    ("GET", "/async/stream/?chunks=3&delay=0", None),
    ("GET", "/nowhere/", None),
    ("GET", "/async/json/?q=%C3%A9", None),
]


@pytest.fixture
def uvicorn_port(tmp_path, migrated_sqlite):
    """uvicorn serving the test project's ASGI application on a free port."""
    database = tmp_path / "uvicorn.sqlite3"
    shutil.copy(migrated_sqlite, database)
    port = free_port()
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "uvicorn", "testproject.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    proc = subprocess.Popen(
        command,
        cwd=TESTPROJECT,
        env=base_env(f"sqlite:///{database}"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def answer(port: int, method: str, path: str, body) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"X-Request-ID": "same-id"})
        response = conn.getresponse()
        headers = {
            name.lower(): value
            for name, value in response.getheaders()
            if name.lower() not in FRAMING
        }
        body = response.read()
        if path.startswith("/async/json/"):
            body = body.replace(b'"same-id"', b"null")  # only serve binds the request id
        return response.status, headers, body
    finally:
        conn.close()


async def websocket_story(port: int) -> list:
    """What a client sees over a few websocket conversations."""
    story = []
    url = f"ws://127.0.0.1:{port}"
    async with connect(url + "/ws/echo/", origin=ORIGIN, subprotocols=["chat.v2"]) as ws:
        story.append(("subprotocol", ws.subprotocol))
        await ws.send("text é")
        story.append(("text", await ws.recv()))
        await ws.send(b"\x00\x01")
        story.append(("bytes", await ws.recv()))
        await ws.send("close:4001")
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            story.append(("closed by server", closed.rcvd.code))
    for path, origin in (("/ws/echo/?reject", ORIGIN), ("/ws/echo/", "http://evil.example")):
        try:
            async with connect(url + path, origin=origin):
                story.append(("accepted", path))
        except InvalidStatus as refused:
            story.append(("refused", path, refused.response.status_code))
    return story


def test_serve_and_uvicorn_answer_the_same(start_serve, uvicorn_port):
    served = start_serve("--websockets")
    for method, path, body in REQUESTS:
        ours = answer(served.port, method, path, body)
        reference = answer(uvicorn_port, method, path, body)
        assert ours == reference, (method, path)
    assert asyncio.run(websocket_story(served.port)) == asyncio.run(websocket_story(uvicorn_port))
