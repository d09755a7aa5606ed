"""``async def`` views run on the event loop, next to sync views on the worker threads."""

import asyncio
import json
import re
import socket
import threading
import time
import uuid

import pytest
from conftest import raw_request


async def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET on its own connection: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def wait_for_output(served, text: str, timeout: float) -> float:
    """Seconds until ``text`` appears in the server's output (fails after ``timeout``)."""
    start = time.monotonic()
    while text not in served.output():
        assert time.monotonic() - start < timeout, f"{text!r} not logged:\n{served.output()}"
        time.sleep(0.02)
    return time.monotonic() - start


def test_an_async_view_answers_with_request_id_route_metrics_and_access_log(start_serve):
    served = start_serve()
    status, headers, body = served.get("/async/json/", headers={"X-Request-ID": "abc-123"})
    assert status == 200
    assert json.loads(body) == {"hello": "async", "request_id": "abc-123"}
    assert headers["X-Request-ID"] == "abc-123"
    assert headers["Content-Type"] == "application/json"
    assert served.request("HEAD", "/async/json/")[2] == b""
    status, headers, body = served.get("/async/status/204/")
    assert (status, headers["X-Custom"], body) == (204, "yes", b"")
    assert served.get("/async/error/")[0] == 500
    error_line = 'hurricane_requests_total{method="GET",route="async/error/",status="5xx"} 1.0'
    deadline = time.monotonic() + 5
    while error_line not in (metrics := served.probe_get("/metrics")[1].decode()):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.05)
    assert 'hurricane_requests_total{method="GET",route="async/json/",status="2xx"} 1.0' in metrics
    assert re.search(r"GET /async/json/ 200 \d+B .* request_id=abc-123", served.output())


def test_an_async_view_reads_the_request_body_and_refuses_a_too_large_one(start_serve):
    served = start_serve("--max-body-size", "1K")
    status, headers, body = served.request("POST", "/async/echo/", body=b"x" * 1000)
    assert (status, body) == (200, b"x" * 1000)
    status, _, body = served.request("POST", "/async/echo/", body=b"x" * 2000)
    assert status == 413


def test_fifty_async_views_wait_together_while_sync_views_keep_answering(start_serve):
    served = start_serve("--workers", "2")
    sync_latencies = []
    stop = threading.Event()

    def sync_traffic():
        while not stop.is_set():
            started = time.monotonic()
            assert served.get("/json/")[0] == 200
            sync_latencies.append(time.monotonic() - started)

    async def fifty():
        started = time.monotonic()
        results = await asyncio.gather(
            *(get(served.port, "/async/sleep/?seconds=1") for _ in range(50))
        )
        return time.monotonic() - started, results

    thread = threading.Thread(target=sync_traffic)
    thread.start()
    try:
        elapsed, results = asyncio.run(fifty())
    finally:
        stop.set()
        thread.join()
    assert all(status == 200 for status, _ in results)
    # On two worker threads the same views would take 25 s; on the loop they overlap.
    print("50 async views of 1 s took", round(elapsed, 2), "s")
    assert elapsed < 2.5, elapsed
    assert len(sync_latencies) >= 5
    assert sorted(sync_latencies)[len(sync_latencies) // 2] < 0.5


def test_a_client_leaving_a_streaming_async_view_cancels_it(start_serve):
    served = start_serve()
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.sendall(b"GET /async/stream/?chunks=100&delay=0.2&tag=s1 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"chunk 0" in sock.recv(65536)
    sock.close()
    assert wait_for_output(served, "async stream cancelled after", 5) < 1.0
    assert "async stream cancelled after" in served.output()
    time.sleep(0.2)
    assert re.search(r"GET /async/stream/\S* 499 ", served.output())


def test_a_client_leaving_a_waiting_async_view_cancels_it(start_serve):
    served = start_serve()
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.sendall(b"GET /async/sleep/?seconds=30&tag=w1 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.3)
    sock.close()
    assert wait_for_output(served, "async view cancelled: w1", 5) < 1.0


def test_a_streaming_async_response_waits_for_a_reader_that_does_not_read(start_serve):
    served = start_serve()
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    # 400 chunks of 256 KiB without a pause: 100 MiB if nothing waited for the socket.
    target = "/async/stream/?chunks=400&size=262144&delay=0&tag=stalled"
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(1.5)
    sock.close()
    wait_for_output(served, "async stream cancelled after", 5)
    produced = int(re.search(r"cancelled after (\d+) chunks: stalled", served.output()).group(1))
    print("chunks produced while the client did not read:", produced)
    assert produced < 60, produced  # socket buffers hold a few MiB, the rest waited


def test_a_streaming_async_response_arrives_chunked(start_serve):
    served = start_serve()
    status, headers, body = served.get("/async/stream/?chunks=5&delay=0")
    assert status == 200
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


@pytest.fixture
def fresh_postgres(postgres_url):
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    import psycopg

    name = f"hurricane_asgi_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_async_orm_on_postgresql(start_serve, fresh_postgres):
    served = start_serve(
        database_url=fresh_postgres, env={"HURRICANE_COMMAND": "'migrate --noinput'"}
    )
    status, _, body = served.get("/async/orm/")
    assert status == 200
    assert json.loads(body) == {"item": None, "count": 0}


def test_sync_views_stay_on_the_worker_threads_and_async_views_on_the_loop(start_serve):
    served = start_serve()
    assert json.loads(served.get("/thread/")[2])["thread"].startswith("hurricane-worker-")
    assert json.loads(served.get("/async/thread/")[2])["thread"] == "MainThread"


def test_async_views_can_go_to_the_worker_threads_instead(start_serve):
    served = start_serve("--async-views", "false")
    # Django's sync handler runs the coroutine in an event loop of its own, off our loop.
    assert json.loads(served.get("/async/thread/")[2])["thread"] != "MainThread"


def test_websockets_without_an_asgi_application_refuse_to_start(start_serve):
    served = start_serve("--websockets", env={"TESTPROJECT_NO_ASGI_APPLICATION": "1"}, wait=False)
    assert served.wait_exit(60) == 1
    assert "option 'websockets' needs the setting ASGI_APPLICATION" in served.output()


def raw_json(port: int, data: bytes) -> dict:
    """Send ``data`` (a request asking to close); the JSON body of a 200 answer."""
    answer = raw_request(port, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:500]
    return json.loads(body)


def test_an_async_view_gets_a_chunked_body_with_extensions_and_trailers(start_serve):
    # RFC 9112 section 7.1: extensions ignored, trailer fields never merged into the headers.
    served = start_serve()
    seen = raw_json(
        served.port,
        b"POST /async/meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b'5;name=value\r\nhello\r\n6 ; a="b c";flag\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n',
    )
    assert seen["body"] == "hello world"
    assert "HTTP_X_CHECKSUM" not in seen["http_keys"]
    answer = raw_request(
        served.port,
        b"POST /async/meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]


def test_an_async_view_sees_the_authority_of_an_absolute_form_target_as_host(start_serve):
    # RFC 9112 section 3.2.2: the target's authority wins over the Host field.
    served = start_serve()
    seen = raw_json(
        served.port,
        b"GET http://target.example:8080/async/meta/?q=1#frag HTTP/1.1\r\nHost: other\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert (seen["path_info"], seen["query_string"]) == ("/async/meta/", "q=1")
    assert seen["host"] == "target.example:8080"
