"""The app port: Django answers through Tornado, streamed, with request ids and routes."""

import http.client
import json
import socket
import time
import uuid

from conftest import raw_request


def test_small_json_view(start_serve):
    served = start_serve()
    status, headers, body = served.get("/json/")
    assert status == 200
    assert json.loads(body) == {"hello": "world", "answer": 42}
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)


def test_orm_view_queries_the_database(start_serve):
    served = start_serve()
    status, _, body = served.get("/orm/")
    assert status == 200 and json.loads(body) == {"item": None}


def test_keep_alive_serves_many_requests_on_one_connection(start_serve):
    served = start_serve()
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    for index in range(20):
        conn.request("GET", f"/items/{index}/")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"pk": index}
    conn.close()


def test_request_id_is_generated_and_echoed(start_serve):
    served = start_serve()
    _, first, _ = served.get("/json/")
    _, second, _ = served.get("/json/")
    assert first["X-Request-Id"] and first["X-Request-Id"] != second["X-Request-Id"]


def test_valid_request_id_and_traceparent_are_bound_for_the_view(start_serve):
    served = start_serve()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    status, headers, body = served.get(
        "/context/", headers={"X-Request-ID": "req-42", "traceparent": traceparent}
    )
    assert status == 200
    assert headers["X-Request-Id"] == "req-42"
    assert json.loads(body) == {"request_id": "req-42", "traceparent": traceparent}


def test_hostile_request_id_is_replaced(start_serve):
    served = start_serve()
    for hostile in ["x" * 500, "a b", "<script>"]:
        _, headers, body = served.get("/context/", headers={"X-Request-ID": hostile})
        assert headers["X-Request-Id"] != hostile
        assert json.loads(body)["request_id"] == headers["X-Request-Id"]


def test_context_does_not_leak_between_requests(start_serve):
    served = start_serve("--workers", "1")
    served.get(
        "/context/",
        headers={"X-Request-ID": "first", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    _, headers, body = served.get("/context/")
    assert json.loads(body) == {"request_id": headers["X-Request-Id"], "traceparent": None}


def test_streaming_response_arrives_before_the_view_finishes(start_serve):
    served = start_serve()
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    started = time.monotonic()
    conn.request("GET", "/stream/?chunks=3&delay=2")
    response = conn.getresponse()
    assert response.status == 200
    first_chunk = response.read(8)
    first_at = time.monotonic() - started
    rest = response.read()
    total = time.monotonic() - started
    assert first_chunk == b"chunk 0\n"
    assert rest.endswith(b"chunk 2\n")
    # The view sleeps 2 s after each chunk: the first one must not wait for the others.
    assert first_at < total - 2, (first_at, total)


def test_file_response_is_streamed_whole(start_serve):
    served = start_serve()
    size = 3 * 1024 * 1024 + 17
    status, headers, body = served.get(f"/file/?size={size}")
    assert status == 200
    assert int(headers["Content-Length"]) == size == len(body)
    assert body[:256] == bytes(range(256))


def test_post_body_reaches_the_view(start_serve):
    served = start_serve()
    payload = uuid.uuid4().bytes * 10000
    status, headers, body = served.request("POST", "/echo/", body=payload)
    assert status == 200 and body == payload


def test_chunked_request_body_reaches_the_view(start_serve):
    served = start_serve()
    request = (
        b"POST /echo/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    answer = raw_request(served.port, request)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"hello world")


def test_head_has_headers_but_no_body(start_serve):
    served = start_serve()
    answer = raw_request(
        served.port, b"HEAD /json/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""


def test_view_errors_become_500_and_serving_continues(start_serve):
    served = start_serve()
    assert served.get("/error/")[0] == 500
    assert served.get("/json/")[0] == 200


def test_unknown_url_is_404(start_serve):
    served = start_serve()
    assert served.get("/nope/")[0] == 404


def test_static_and_media_are_served_when_enabled(start_serve):
    served = start_serve("--static", "--media")
    status, _, body = served.get("/static/hello.txt")
    assert status == 200 and body == b"hello static\n"
    status, _, body = served.get("/media/photo.txt")
    assert status == 200 and body == b"hello media\n"
    assert served.get("/static/missing.txt")[0] == 404
    assert served.get("/static/../settings.py")[0] == 404


def test_static_is_not_served_by_default(start_serve):
    served = start_serve("--static", "false")
    assert served.get("/static/hello.txt")[0] == 404


def test_many_concurrent_clients_all_get_answers(start_serve):
    import concurrent.futures

    served = start_serve("--workers", "2")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: served.get(f"/items/{i}/")[0], range(200)))
    assert results == [200] * 200


def test_client_leaving_mid_stream_does_not_break_the_server(start_serve):
    served = start_serve("--workers", "1")
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.sendall(b"GET /stream/?chunks=50&delay=0.05 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if served.get("/json/", timeout=30)[0] == 200:
            break
    assert served.get("/json/")[0] == 200
