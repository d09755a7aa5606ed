"""HTTP/1.1 conformance of the app port, one raw request at a time (RFC 9110 and RFC 9112).

Every case is sent on its own connection to one server, exactly as written here (no client
library in between to fix it up), and the server must go on serving after each. Requests the
RFCs require a server to refuse get a 400 from the server itself, before Django sees them;
valid requests reach Django with what they meant (``/meta/`` shows what Django was handed).
gunicorn serving the same project is the reference for "valid": what it accepts, we accept.
"""

import http.client
import io
import json
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest
from conftest import TESTPROJECT, base_env, free_port, raw_request, spawn_serve


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def served(request, tmp_path_factory, migrated_sqlite):
    """One server per event loop: every guarantee must hold on both."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    server = spawn_serve(
        tmp_path_factory.mktemp("conformance"),
        migrated_sqlite,
        "--workers",
        "2",
        "--loop",
        request.param,
    )
    assert f"on {request.param}" in server.output()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def keeps_serving(request):
    """After every case, the shared server still answers a plain request on a new connection."""
    yield
    if "served" in request.fixturenames:
        served = request.getfixturevalue("served")
        assert served.get("/json/", timeout=10)[0] == 200, served.output()[-2000:]


def send(port: int, data: bytes, *, half_close: bool = False, method: str = "GET"):
    """Send ``data`` as is; return (status, headers, body) of the first response, or None.

    ``half_close`` shuts the client's write side after the request, as ``nc -N`` and some
    health checkers do: the request is complete, the client waits for its answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        return response.status, response.headers, response.read()


def meta(port: int, data: bytes) -> dict:
    """Send a request for ``/meta/``; return what Django was handed."""
    answer = send(port, data)
    assert answer is not None and answer[0] == 200, answer
    return json.loads(answer[2])


# -- half-closed clients (RFC 9112 section 9.6) -------------------------------------------


def test_half_closed_client_gets_its_response_from_a_fast_view(served):
    for _ in range(10):
        answer = send(served.port, b"GET /json/ HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
        assert answer is not None and answer[0] == 200, answer
        assert json.loads(answer[2]) == {"hello": "world", "answer": 42}


def test_half_closed_client_gets_its_response_from_a_slow_view(served):
    request = b"GET /sleep/?seconds=0.5 HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(3):
        answer = send(served.port, request, half_close=True)
        assert answer is not None and answer[0] == 200, answer


def test_half_closed_client_with_a_body_gets_its_response(served):
    request = b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    # Repeated: the end-of-file can land between the head and the body being read.
    for _ in range(30):
        answer = send(served.port, request, half_close=True)
        assert answer is not None and answer[:1] == (200,) and answer[2] == b"hello"


def test_half_closed_client_gets_a_streamed_response(served):
    request = b"GET /stream/?chunks=3&delay=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = send(served.port, request, half_close=True)
    assert answer is not None and answer[2] == b"chunk 0\nchunk 1\nchunk 2\n"


def test_half_closed_client_gets_every_pipelined_response(served):
    # The end-of-file arrives behind requests not parsed yet: it must wait for them.
    request = b"GET /sleep/?seconds=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
    request += b"GET /json/ HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):  # until the server closes, after the last answer
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 4, received


def test_half_closed_client_with_an_incomplete_request_is_closed_at_once(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        sock.sendall(b"GET /json/ HTTP/1.1\r\nHost: x\r\n")
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 5  # not left for the idle timeout


def metric(served, name: str) -> float:
    status, body = served.probe_get("/metrics")
    assert status == 200
    match = re.search(rf"^{name} (\S+)$", body.decode(), re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_half_closed_requests_leave_no_request_in_flight(served):
    for _ in range(3):
        send(served.port, b"GET /sleep/?seconds=0.2 HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
    deadline = time.monotonic() + 10
    while metric(served, "hurricane_requests_in_flight") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(served, "hurricane_requests_in_flight") == 0


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the client is really gone."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_reset_client_waiting_for_a_worker_is_abandoned(start_serve):
    served = start_serve("--workers", "1")
    busy = socket.create_connection(("127.0.0.1", served.port), timeout=15)
    busy.sendall(b"GET /sleep/?seconds=1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)  # the only worker is now asleep
    gone = socket.create_connection(("127.0.0.1", served.port), timeout=15)
    gone.sendall(b"GET /items/4242/ HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    reset(gone)
    response = http.client.HTTPResponse(busy, method="GET")
    response.begin()
    assert response.status == 200
    busy.close()
    deadline = time.monotonic() + 10
    while " GET /items/4242/ 499 " not in served.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert " GET /items/4242/ 499 " in served.output(), served.output()
    assert metric(served, "hurricane_requests_in_flight") == 0


# -- requests the server refuses itself -------------------------------------------------

REFUSED = {
    # A target that urlsplit cannot parse once raised inside the environ builder (500).
    "unparsable-absolute-target": b"PUT s://]ufd/: HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form-without-host": b"GET http:///meta/ HTTP/1.1\r\nHost: x\r\n\r\n",
    # RFC 9112 section 3.2: Host is required once, with a valid value.
    "missing-host": b"GET /meta/ HTTP/1.1\r\n\r\n",
    "two-host-lines": b"GET /meta/ HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\n\r\n",
    "host-list": b"GET /meta/ HTTP/1.1\r\nHost: localhost, evil.example.com\r\n\r\n",
    "host-with-space": b"GET /meta/ HTTP/1.1\r\nHost: a b\r\n\r\n",
    "host-with-bad-port": b"GET /meta/ HTTP/1.1\r\nHost: x:80a\r\n\r\n",
    "host-with-userinfo": b"GET /meta/ HTTP/1.1\r\nHost: user@x\r\n\r\n",
    "host-bad-ipv6": b"GET /meta/ HTTP/1.1\r\nHost: [::g]\r\n\r\n",
    # RFC 9112 section 3.2: asterisk-form is for OPTIONS, authority-form for CONNECT.
    "asterisk-form-get": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "authority-form-get": b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    "target-without-slash": b"GET foo/bar HTTP/1.1\r\nHost: x\r\n\r\n",
    "control-character-in-target": b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
    # Singleton fields that change meaning when repeated (RFC 9110 sections 8.3, 8.6).
    "content-type-twice": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "content-length-list-differs": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 3\r\n\r\n{}x"
    ),
    "content-length-lines-differ": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"
    ),
    "content-length-with-sign": b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
    "chunked-in-http-1.0": (
        b"POST /meta/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    # RFC 9112 section 5.1: no whitespace between a field name and its colon.
    "space-before-colon": b"GET /meta/ HTTP/1.1\r\nHost : x\r\n\r\n",
    "content-length-and-chunked": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    # Obsolete line folding and bare LF stay refused (RFC 9112 sections 5.2, 7.1).
    "obs-fold-header": b"GET /meta/ HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "bare-lf-after-request-line": b"GET /meta/ HTTP/1.1\nHost: x\r\n\r\n",
    "bare-lf-after-header-field": b"GET /meta/ HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "bare-lf-ending-the-head": b"GET /meta/ HTTP/1.1\r\nHost: x\n\n",
    "header-name-with-space": b"GET /meta/ HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    "control-character-in-header": b"GET /meta/ HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "obs-fold-trailer": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nX-Trailer: a\r\n b\r\n\r\n"
    ),
    "bare-lf-after-chunk-size": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n"
    ),
    "bare-lf-after-chunk-data": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\n0\r\n\r\n"
    ),
    "bare-lf-in-trailer": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nX-Trailer: a\n\r\n"
    ),
    "bad-chunk-extension": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;a b\r\n{}\r\n0\r\n\r\n"
    ),
    "bad-chunk-size": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"+2\r\n{}\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
def test_request_is_refused_with_400_by_the_server(served, request_bytes):
    before = served.output()
    answer = send(served.port, request_bytes)
    assert answer is not None, "closed without an answer"
    status, headers, body = answer
    assert status == 400, answer
    # The server's own answer, not Django's: no request id was made for it.
    assert "X-Request-ID" not in headers, answer
    assert "Traceback" not in served.output()[len(before) :]


# -- valid requests Django gets, with what they meant ---------------------------------------


def test_fragment_never_reaches_the_query_string(served):
    seen = meta(served.port, b"GET /meta/?a=1#frag?b=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (seen["path_info"], seen["query_string"]) == ("/meta/", "a=1")
    seen = meta(served.port, b"GET /meta/#frag HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (seen["path_info"], seen["query_string"]) == ("/meta/", "")


def test_absolute_form_is_accepted_and_its_authority_is_the_host(served):
    # RFC 9112 section 3.2.2: the target's authority wins over the Host field.
    seen = meta(
        served.port, b"GET http://target.example:8080/meta/?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"
    )
    assert seen["path_info"] == "/meta/"
    assert seen["query_string"] == "q=1"
    assert seen["host"] == "target.example:8080"


def test_options_asterisk_is_answered(served):
    answer = send(served.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", method="OPTIONS")
    assert answer is not None and answer[0] == 200, answer
    assert "Allow" in answer[1]


def test_http_1_0_request_without_host_is_served(served):
    answer = send(served.port, b"GET /json/ HTTP/1.0\r\n\r\n")
    assert answer is not None and answer[0] == 200, answer


def test_ip_literal_hosts_are_valid(served):
    for host in (b"[::1]:8000", b"127.0.0.1"):
        answer = send(served.port, b"GET /json/ HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert answer is not None and answer[0] == 200, (host, answer)


def chunked(body_lines: bytes) -> bytes:
    return (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: text/plain\r\n\r\n" + body_lines
    )


def test_chunk_extensions_are_ignored(served):
    # RFC 9112 section 7.1.1: a recipient MUST ignore unrecognised chunk extensions.
    seen = meta(
        served.port,
        chunked(b'5;name=value\r\nhello\r\n6 ; quoted="a;b" ; flag\r\n world\r\n0;last\r\n\r\n'),
    )
    assert seen["body"] == "hello world"


def test_trailer_section_is_accepted_but_not_merged_into_headers(served):
    seen = meta(
        served.port,
        chunked(b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"),
    )
    assert seen["body"] == "hello"
    assert "HTTP_X_CHECKSUM" not in seen["http_keys"]
    assert seen["content_type"] == "text/plain"


class _Replay:
    """Stands in for a socket so that ``HTTPResponse`` parses responses one after another."""

    class _File(io.BytesIO):
        def close(self):  # HTTPResponse closes its file after each response
            pass

    def __init__(self, data: bytes):
        self.file = self._File(data)

    def makefile(self, mode):
        return self.file


def test_chunked_requests_keep_the_connection_usable(served):
    """A chunked body read by the server leaves the next request on the connection intact."""
    request = chunked(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
    second = b"GET /meta/?second=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    replay = _Replay(raw_request(served.port, request + second))
    answers = []
    for method in ("POST", "GET"):
        response = http.client.HTTPResponse(replay, method=method)
        response.begin()
        answers.append(json.loads(response.read()))
    assert answers[0]["body"] == "abc"
    assert answers[1]["query_string"] == "second=1"


def test_equal_content_length_list_is_accepted(served):
    # RFC 9110 section 8.6: a list of identical values may be taken as that one value.
    answer = send(served.port, b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nok")
    assert answer is not None and answer[0] == 200 and answer[2] == b"ok", answer


# -- beside gunicorn: whatever valid request it accepts, so do we ----------------------------

ACCEPTED = {
    "origin-form": b"GET /meta/?a=1&b=2 HTTP/1.1\r\nHost: x\r\n\r\n",
    "percent-encoded-path": b"GET /me%74a/?x=%20 HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form": b"GET http://x/meta/?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "fragment": b"GET /meta/?a=1#frag HTTP/1.1\r\nHost: x\r\n\r\n",
    "http-1.0-without-host": b"GET /meta/ HTTP/1.0\r\n\r\n",
    "ipv6-host": b"GET /meta/ HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
    "chunk-extensions": chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"),
    "trailer-section": chunked(b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"),
    "expect-100-continue": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
    ),
    "equal-content-length-list": (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nok"
    ),
    "head": b"HEAD /meta/ HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, migrated_sqlite):
    """gunicorn (sync worker) serving the same test project: the reference for "valid"."""
    pytest.importorskip("gunicorn")
    workdir = tmp_path_factory.mktemp("gunicorn")
    database = workdir / "db.sqlite3"
    shutil.copy(migrated_sqlite, database)
    port = free_port()
    log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        + ["testproject.wsgi"],
        cwd=TESTPROJECT,
        env=base_env(f"sqlite:///{database}"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((workdir / "gunicorn.log").read_text()) from None
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.mark.parametrize("request_bytes", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_gunicorn_accepts_we_accept(served, gunicorn, request_bytes):
    method = request_bytes.split(b" ", 1)[0].decode()
    theirs = send(gunicorn, request_bytes, method=method)
    ours = send(served.port, request_bytes, method=method)
    assert ours is not None and ours[0] < 400, (ours, theirs)
    if theirs is not None and theirs[0] < 400 and method != "HEAD":
        # Django saw the same target and host. (Not the same body: under gunicorn, Django
        # reads no chunked body at all, since WSGI gives it no CONTENT_LENGTH.)
        ours, theirs = json.loads(ours[2]), json.loads(theirs[2])
        for key in ("method", "path_info", "query_string", "host"):
            assert ours[key] == theirs[key], key


def test_half_closed_clients_are_answered_by_both(served, gunicorn):
    request = b"GET /sleep/?seconds=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
    for port in (gunicorn, served.port):
        answer = send(port, request, half_close=True)
        assert answer is not None and answer[0] == 200, (port, answer)


def test_a_stalled_chunked_body_is_dropped_after_the_body_timeout(start_serve):
    served = start_serve("--workers", "1", "--body-timeout", "1")
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        sock.sendall(chunked(b"5\r\nhel"))  # and never the rest
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed, no worker ever saw it
        assert time.monotonic() - started < 10
    assert served.get("/json/")[0] == 200
    assert "timeout reading a chunked body" in served.output()


def test_a_transfer_coding_other_than_chunked_is_501(served):
    # RFC 9112 section 6.1: a server that does not understand a transfer coding answers 501.
    request = (
        b"POST /meta/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    )
    answer = send(served.port, request)
    assert answer is not None and answer[0] == 501, answer


ASYNC_REFUSED = {
    "missing-host": b"GET /async/json/ HTTP/1.1\r\n\r\n",
    "two-host-lines": b"GET /async/json/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "target-without-slash": b"GET async/json/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare-lf-in-head": b"GET /async/json/ HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", ASYNC_REFUSED.values(), ids=ASYNC_REFUSED.keys())
def test_async_views_pass_the_same_gate(served, request_bytes):
    """Requests for async views (run on the loop through ASGI) are checked like all others."""
    assert "async views" in served.output()
    answer = send(served.port, request_bytes)
    assert answer is not None and answer[0] == 400, answer
    assert "X-Request-ID" not in answer[1], answer
