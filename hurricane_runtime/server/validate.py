"""What a request must be before Django may see it (RFC 9112 sections 3, 6; RFC 9110 section 7.2).

Tornado parses the request line and the header fields; this module checks what they mean, once
per request, in the delegate seam (``http.Exchange.headers_received``):

- the request-target form: origin-form (``/path?query``) for every method, absolute-form
  (``http://host/path``) for every method, asterisk-form (``*``) for OPTIONS only. Authority-form
  is for CONNECT, which an origin server does not serve; anything else is refused. A
  ``#fragment`` is never part of a target: it is dropped, as gunicorn does;
- Host: exactly one field line for HTTP/1.1 (at most one for HTTP/1.0) with a valid
  ``host[:port]`` value; for absolute-form the target's authority is the host (section 3.2.2);
- framing: Content-Length a list of one repeated number, Transfer-Encoding exactly ``chunked``
  and never together with Content-Length; Content-Type at most once.

A request that fails gets a 400 from the server itself (``BadRequest``), without a traceback:
Django never sees a request it could misread.
"""

import functools
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit


class BadRequest(Exception):
    """The request cannot be handed to Django; ``str(error)`` says why (for the client)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


class Request(NamedTuple):
    """A request's target and body framing, as checked."""

    path: str  # percent-encoded, as sent; "*" for OPTIONS *
    query: str
    authority: str | None  # absolute-form only: the host Django must see
    content_length: int | None
    chunked: bool


# RFC 3986 reg-name without ",": a comma is a legal sub-delim but never part of a DNS name, and
# a proxy that merges two Host lines makes one with a comma (Tornado refuses it for the same
# reason). "@" (userinfo) is refused by not being here.
_REG_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*"
_HOST = re.compile(rf"(?:\[(?P<ip>[0-9A-Fa-f:.]+)\]|{_REG_NAME})(?::[0-9]*)?").fullmatch
_DIGITS = re.compile(r"[0-9]+").fullmatch
_LIST_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
_ABSOLUTE_SCHEMES = ("http://", "https://")


@functools.lru_cache(maxsize=256)  # a pod sees a handful of Host values, over and over
def valid_host(value: str) -> bool:
    """``uri-host [ ":" port ]`` (RFC 9112 section 3.2); an empty value is valid."""
    match = _HOST(value)
    if match is None:
        return False
    if match["ip"] is not None:
        try:
            ipaddress.IPv6Address(match["ip"])
        except ValueError:
            return False
    return True


def _target(method: str, target: str) -> tuple[str, str, str | None]:
    """(path, query, authority) of a request-target."""
    if "#" in target:
        target = target.partition("#")[0]
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query, None
    if target == "*":
        if method != "OPTIONS":
            raise BadRequest("asterisk-form request target is for OPTIONS only")
        return "*", "", None
    if target[:8].lower().startswith(_ABSOLUTE_SCHEMES):
        try:
            parts = urlsplit(target)
        except ValueError:
            raise BadRequest("unparsable request target") from None
        if not parts.netloc or not valid_host(parts.netloc):
            raise BadRequest("invalid authority in the request target")
        return parts.path or "/", parts.query, parts.netloc
    raise BadRequest("request target must start with / or http(s)://")


def _content_length(values: list[str]) -> int:
    numbers = {number for value in values for number in _LIST_SEPARATOR.split(value.strip(" \t"))}
    if len(numbers) != 1:
        raise BadRequest("conflicting Content-Length values")
    number = numbers.pop()
    if not _DIGITS(number):
        raise BadRequest("invalid Content-Length")
    return int(number)


def validate(start_line, headers) -> Request:
    """Check a request's target, Host and framing; raise ``BadRequest`` for what is invalid."""
    path, query, authority = _target(start_line.method, start_line.path)

    hosts = headers.get_list("Host")
    if len(hosts) > 1:
        raise BadRequest("more than one Host field")
    if hosts:
        if not valid_host(hosts[0]):
            raise BadRequest("invalid Host field")
    elif start_line.version != "HTTP/1.0":
        raise BadRequest("missing Host field")

    if len(headers.get_list("Content-Type")) > 1:
        raise BadRequest("more than one Content-Type field")

    lengths = headers.get_list("Content-Length")
    codings = headers.get_list("Transfer-Encoding")
    if codings:
        if lengths:
            raise BadRequest("both Transfer-Encoding and Content-Length")
        if start_line.version == "HTTP/1.0":
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        if len(codings) > 1 or codings[0].lower() != "chunked":
            # RFC 9112 section 6.1: a coding the server does not understand is a 501.
            raise BadRequest("only the chunked transfer coding is supported", status=501)
        return Request(path, query, authority, None, True)
    content_length = _content_length(lengths) if lengths else None
    return Request(path, query, authority, content_length, False)
