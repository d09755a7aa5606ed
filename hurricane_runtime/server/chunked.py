"""Reading a chunked request body (RFC 9112 section 7.1), chunk extensions and trailers included.

Tornado's own reader refuses two things the RFC allows: chunk extensions (``5;name=value``,
which a recipient MUST ignore when it does not know them) and a trailer section after the last
chunk. This reader accepts both, ignores the extensions and discards the trailer fields: they
are never merged into the request's header fields (RFC 9110 section 6.5.1), so no trailer can
pose as a header a proxy checked. It stays strict where strictness prevents request smuggling:
every line ends in CRLF (no bare LF), no obsolete line folding, sizes are plain hex.
"""

import asyncio
import re

from .fields import FIELD_LINE
from .validate import BadRequest

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# chunk-size [ chunk-ext ]; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted ) ] )
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*"
).fullmatch
MAX_LINE = 4096  # a size line with its extensions, or one trailer field line
READ_SIZE = 64 * 1024


async def read_chunked_body(stream, deliver, max_trailer_size: int) -> None:
    """Read a chunked body from ``stream``, handing its data to ``deliver(bytes) -> bool``.

    ``deliver`` returns False once it wants no more (the body became too large); reading stops
    there. Raises ``BadRequest`` for malformed framing, and Tornado's ``StreamClosedError`` or
    ``UnsatisfiableReadError`` when the client leaves or sends a line longer than ``MAX_LINE``.
    """
    while True:
        line = await stream.read_until(b"\r\n", max_bytes=MAX_LINE)
        match = _SIZE_LINE(line[:-2])
        if match is None:
            raise BadRequest("invalid chunk size line")
        remaining = int(match[1], 16)
        if remaining == 0:
            break
        while remaining:
            data = await stream.read_bytes(min(remaining, READ_SIZE), partial=True)
            remaining -= len(data)
            if not deliver(data):
                return
        if await stream.read_bytes(2) != b"\r\n":
            raise BadRequest("chunk data not followed by CRLF")
    trailer_size = 0
    while True:
        line = await stream.read_until(b"\r\n", max_bytes=MAX_LINE)
        if line == b"\r\n":
            return
        trailer_size += len(line)
        if trailer_size > max_trailer_size:
            raise BadRequest("trailer section too large")
        if FIELD_LINE(line[:-2].decode("latin-1")) is None:
            # Also what a folded line (leading whitespace) or a bare LF inside it looks like.
            raise BadRequest("invalid trailer field line")


async def take_over_chunked_body(stream, headers, deliver, max_trailer_size: int, timeout: float):
    """Read an announced chunked body before Tornado would, within ``timeout`` seconds.

    Tornado reads a body only when the header fields announce one, so the announcement is
    removed before Tornado looks; ``Expect: 100-continue`` is answered first, as Tornado would.
    Raises what ``read_chunked_body`` raises, and ``TimeoutError``.
    """
    del headers["Transfer-Encoding"]
    if headers.get("Expect", "").lower() == "100-continue":
        del headers["Expect"]
        stream.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.wait_for(read_chunked_body(stream, deliver, max_trailer_size), timeout)
