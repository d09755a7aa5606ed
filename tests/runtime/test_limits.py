"""Hostile or broken clients get a 4xx or a closed connection; everyone else is served."""

import contextlib
import re
import socket
import threading
import time

from conftest import raw_request


def test_body_over_the_limit_by_content_length_is_413(start_serve):
    served = start_serve("--max-body-size", "1K")
    answer = raw_request(
        served.port,
        b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Connection: close" in answer
    status, _, body = served.request("POST", "/echo/", body=b"x" * 1024)
    assert status == 200 and len(body) == 1024


def test_chunked_body_over_the_limit_is_refused(start_serve):
    served = start_serve("--max-body-size", "1K")
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    request = b"POST /echo/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3
    answer = raw_request(served.port, request)
    # 413 when the client reads before the server closes; an empty answer (closed) otherwise.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert served.get("/json/")[0] == 200


def test_bad_request_line_gets_400_and_serving_continues(start_serve):
    served = start_serve()
    for garbage in (b"HELLO\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\r\n\r\n"):
        answer = raw_request(served.port, garbage)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert served.get("/json/")[0] == 200


def test_bad_content_length_gets_400(start_serve):
    served = start_serve()
    answer = raw_request(
        served.port, b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert served.get("/json/")[0] == 200


def test_oversized_headers_are_refused(start_serve):
    served = start_serve("--max-header-size", "4K")
    request = b"GET /json/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    answer = raw_request(served.port, request)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert served.get("/json/")[0] == 200


def test_slow_clients_do_not_hold_workers(start_serve):
    served = start_serve("--workers", "1", "--idle-timeout", "3", "--body-timeout", "3")
    sockets = []
    for index in range(20):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        if index % 2:
            sock.sendall(b"GET /json/ HTTP/1.1\r\nHost: x\r\n")  # headers never end
        else:
            sock.sendall(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        sockets.append(sock)
    started = time.monotonic()
    assert served.get("/json/", timeout=10)[0] == 200
    assert time.monotonic() - started < 2.0
    # The server gives up on them after its timeouts.
    for sock in sockets:
        sock.settimeout(15)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        sock.close()


def test_slow_reader_of_a_big_response_does_not_hold_the_worker(start_serve):
    served = start_serve("--workers", "1")
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
    sock.sendall(b"y" * 4_000_000)
    time.sleep(1)  # never read the 4 MB answer
    assert served.get("/json/", timeout=10)[0] == 200
    sock.close()


def test_big_responses_read_late_arrive_whole_and_in_order(start_serve):
    # Four pipelined 2 MiB echoes to a client that reads late: more than the socket buffers
    # hold, so a response leaves partly at once and partly later; every byte must arrive once,
    # in order. The last request asks to close, so the answers end with the connection.
    served = start_serve("--workers", "1")
    bodies = [bytes((i + j) % 256 for j in range(256)) * 8192 for i in range(4)]
    request = b""
    for index, body in enumerate(bodies):
        close = b"Connection: close\r\n" if index == len(bodies) - 1 else b""
        request += b"POST /echo/ HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
            close,
            len(body),
            body,
        )
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sender = threading.Thread(target=sock.sendall, args=(request,))
        sender.start()
        time.sleep(1)
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
        sender.join()
    heads = re.findall(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", received)
    assert heads == [b"200"] * 4
    parts = re.split(rb"HTTP/1\.1 200 OK\r\n(?:[^\r]+\r\n)*\r\n", bytes(received))
    assert parts[0] == b"" and parts[1:] == bodies
