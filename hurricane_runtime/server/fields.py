"""Field lines (RFC 9110 section 5, RFC 9112 section 5): one grammar for headers and trailers.

``name ":" OWS value OWS``, the name a token, the value visible characters (and obs-text)
with single spaces or tabs inside, every line ended by CRLF. A line that starts with whitespace
(obsolete line folding) or holds a bare LF does not match: both are refused, in the header
section as in a chunked body's trailer section, because lenient line parsing is what request
smuggling between a proxy and a server is built on.

Parsing the header section here instead of in Tornado's ``HTTPHeaders.parse`` is also about
a third of its cost: one regular expression per line instead of three checks per field.
"""

import re

from tornado import httputil
from tornado.httputil import HTTPHeaders, HTTPInputError

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELD_CHARS = r"[\x21-\x7e\x80-\xff]"
FIELD_LINE = re.compile(
    rf"({_TOKEN}):[ \t]*((?:{_FIELD_CHARS}+(?:[ \t]+{_FIELD_CHARS}+)*)?)[ \t]*"
).fullmatch


def _fills_directly() -> bool:
    """Whether ``HTTPHeaders`` keeps its fields as ``_new_headers`` fills them (Tornado 6.6).

    ``HTTPHeaders.add`` checks the name and the value again with two regular expressions and
    normalises the name three times, about half the cost of parsing a request head. The
    fields are valid by the time they are added here, so they go into Tornado's two dicts
    directly, when those are what this check finds; else through ``add``.
    """
    normalize = getattr(httputil, "_normalize_header", None)
    if normalize is None:
        return False
    probe = HTTPHeaders()
    probe.add("X-A", "1")
    probe.add("x-a", "2")
    direct = _new_headers([("X-A", "1"), ("x-a", "2")], normalize, _RequestFields)
    return (
        vars(probe) == {"_as_list": {"X-A": ["1", "2"]}, "_combined_cache": {}}
        and vars(direct) == vars(probe)
        and direct["x-a"] == probe["X-A"] == probe.get("x-A") == "1,2"
    )


class _RequestFields(HTTPHeaders):
    """A request's fields, filled by ``_new_headers``; ``get`` without ``Mapping.get``'s detour.

    ``Mapping.get`` goes through ``__getitem__`` and a joined-value cache: a request asks for
    a handful of fields that way (Connection, X-Request-ID, traceparent), most of them absent.
    """

    def get(self, name, default=None):
        values = self._as_list.get(_NORMALIZE(name))
        if values is None:
            return default
        return values[0] if len(values) == 1 else ",".join(values)


def _new_headers(fields, normalize, cls=HTTPHeaders) -> HTTPHeaders:
    headers = cls.__new__(cls)
    as_list = headers._as_list = {}
    combined = headers._combined_cache = {}
    for name, value in fields:
        name = normalize(name)
        values = as_list.get(name)
        if values is None:
            as_list[name] = [value]
            combined[name] = value
        else:
            values.append(value)
            combined.pop(name, None)
    return headers


_NORMALIZE = httputil._normalize_header if _fills_directly() else None


def parse_header_section(text: str) -> tuple[str, HTTPHeaders]:
    """The request line and header fields of a request head (latin-1 text, up to its CRLFCRLF).

    Raises Tornado's ``HTTPInputError`` (a plain 400 from Tornado) when a line does not end in
    CRLF or a field line is malformed.
    """
    # RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before a request.
    text = text.lstrip("\r\n")
    start_line, crlf, fields = text.partition("\r\n")
    if not crlf or "\n" in start_line or not fields.endswith("\r\n"):
        raise HTTPInputError("request head lines must end in CRLF")
    parsed = []
    for line in fields[:-2].split("\r\n"):
        if not line:
            continue  # the last line's CRLF
        match = FIELD_LINE(line)
        if match is None:
            raise HTTPInputError("malformed header field line")
        parsed.append((match[1], match[2]))
    if _NORMALIZE is not None:
        return start_line, _new_headers(parsed, _NORMALIZE, _RequestFields)
    headers = HTTPHeaders()
    for name, value in parsed:
        # Validated above, so Tornado's per-value check (its cost) is skipped.
        headers.add(name, value, _chars_are_bytes=False)
    return start_line, headers
