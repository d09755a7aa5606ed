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

from tornado.httputil import HTTPHeaders, HTTPInputError

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELD_CHARS = r"[\x21-\x7e\x80-\xff]"
FIELD_LINE = re.compile(
    rf"({_TOKEN}):[ \t]*((?:{_FIELD_CHARS}+(?:[ \t]+{_FIELD_CHARS}+)*)?)[ \t]*"
).fullmatch


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
    headers = HTTPHeaders()
    add = headers.add
    for line in fields[:-2].split("\r\n"):
        if not line:
            continue  # the last line's CRLF
        match = FIELD_LINE(line)
        if match is None:
            raise HTTPInputError("malformed header field line")
        # Validated above, so Tornado's per-value check (its cost) is skipped.
        add(match[1], match[2], _chars_are_bytes=False)
    return start_line, headers
