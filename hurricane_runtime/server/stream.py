"""The app port's socket stream: Tornado's ``IOStream``, except that a client's FIN is not a close.

A client may send a complete request and then shut down its write side (``nc -N``, some health
checkers and scripts). RFC 9112 section 9.6 lets the server still send the response. Tornado's
``IOStream`` closes the whole socket as soon as a read returns end-of-file, and it watches for
reads while a response is pending so that it notices clients that leave: a half-closed client
loses its answer.

``AppStream`` holds such an end-of-file while a response is owed or still being written: it stops
watching for reads (the socket stays readable forever after a FIN, so watching would spin) and
reports end-of-file, so that Tornado closes as usual, once the response has left. A reset
(the client is really gone) still closes at once and still abandons the request. A client that
closed both directions sends the same FIN as one that only stopped sending; the difference
shows only when the response is written (its kernel answers with a reset), so such a request
runs to its end, as it would under gunicorn.

``AppStream`` also keeps watching for reads while a little unparsed data is buffered. Under
load a keep-alive client's next request usually arrives before Tornado asks for it; Tornado
reads it into the buffer, stops watching the socket because the buffer is not empty, and
starts again when the request's response is pending: two ``epoll_ctl`` calls per request. An
end-of-file that arrives behind such buffered requests is held until they have been read.

Reading costs one ``recv`` per request: no read is tried while the loop already watches the
socket (``_try_inline_read``), a finished read's size limit does not make the next one read
again (``_read_from_buffer``), and no 64 KiB buffer is zero-filled per read
(``_read_to_buffer``). Before, a request cost 1.8 ``recv`` calls (the extra ones failing with
``BlockingIOError``) and 1.8 zero-filled 64 KiB buffers on average under load.
"""

import logging

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamBufferFullError, UnsatisfiableReadError

gen_log = logging.getLogger("tornado.general")  # where IOStream logs the same events


class AppStream(IOStream):
    """An ``IOStream`` that keeps a half-closed connection open for the response it owes."""

    # IOStream sets 27 attributes; three more in the instance dict would pass CPython's limit
    # for key-sharing dicts (30) and make every connection's dict 1.3 KiB larger.
    __slots__ = ("response_owed", "reading_request", "peer_finished")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.response_owed = False  # set while a complete request waits for its response
        self.reading_request = False  # from a request's head until its body has been read
        self.peer_finished = False  # the client sent its FIN

    @classmethod
    def replacing(cls, stream: IOStream) -> "AppStream":
        """The same socket and buffer limits as ``stream``, which has not done any I/O yet."""
        return cls(
            stream.socket,
            max_buffer_size=stream.max_buffer_size,
            read_chunk_size=stream.read_chunk_size,
            max_write_buffer_size=stream.max_write_buffer_size,
        )

    @classmethod
    def taking_over(cls, sock, pending: bytes, max_buffer_size: int, read_chunk_size: int):
        """A stream on ``sock`` whose buffer already holds ``pending``: the bytes another
        reader (``protocol.AppProtocol``) received from the socket and did not parse."""
        stream = cls(sock, max_buffer_size=max_buffer_size, read_chunk_size=read_chunk_size)
        if pending:
            stream._read_buffer += pending
            stream._read_buffer_size += len(pending)
        return stream

    def write_now(self, data: bytes):
        """Send ``data`` at once when nothing is queued before it; None if the socket took it all.

        ``IOStream.write`` builds a future for every write, and whoever waits for it resumes one
        loop iteration later. A whole small response usually fits the socket's send buffer, so
        here only a remainder (slow reader, large body) takes the ``IOStream.write`` path, and
        its future is returned.
        """
        if self._write_buffer or self.closed():
            return self.write(data)  # behind queued data, or StreamClosedError
        try:
            sent = self.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            if not self._is_connreset(error):
                gen_log.warning("Write error on %s: %s", self.fileno(), error)
            self.close(exc_info=error)
            return None  # as IOStream does: the close callback tells the exchange
        if sent == len(data):
            return None
        return self.write(memoryview(data)[sent:])

    def _try_inline_read(self) -> None:
        """``IOStream._try_inline_read``, without a socket read while the loop watches for reads.

        Tornado tries the socket as soon as a read starts. On a keep-alive connection the next
        request has rarely arrived when the request loop asks for it, so that try is a failed
        ``recv`` (a system call and a ``BlockingIOError``) per request. While read interest is
        registered (see ``_handle_events``), data already on the socket makes the loop call
        ``_handle_read`` in its next iteration instead; buffered data is still used at once.
        """
        state = self._state
        if state is None or not state & IOLoop.READ:
            super()._try_inline_read()
            return
        pos = self._find_read_pos()
        if pos is not None:
            self._read_from_buffer(pos)
            return
        self._check_closed()

    def _read_from_buffer(self, pos: int) -> None:
        # Tornado keeps a finished read's ``max_bytes``. A request that arrives before the next
        # read starts (the usual case under load) is then read as if a read wanted ``max_bytes``
        # of it: after the data, one more ``recv`` that fails with ``BlockingIOError``.
        self._read_max_bytes = None
        super()._read_from_buffer(pos)

    def _holding_eof(self) -> bool:
        # Without a pending read, a request may be between its reads (head read, body read
        # not started yet) or wait in the buffer to be parsed: the next read reports the
        # end-of-file at once if that request turns out incomplete. With a read pending, it
        # means the client sent less than the request it began.
        return (
            self.response_owed
            or self.writing()
            or (self._read_future is None and (self.reading_request or self._read_buffer_size > 0))
        )

    def _receive(self, size: int) -> bytes | None:
        """Up to ``size`` bytes from the socket; None if none yet (or held), b"" at end-of-file."""
        if not self.peer_finished:
            try:
                data = self.socket.recv(size)
            except BlockingIOError:
                return None  # nothing yet
            if data:
                return data
            self.peer_finished = True
        if self._holding_eof():
            # Nothing to read: the socket stays open for the response. Stop watching it once
            # Tornado has finished handling this event (it re-adds read interest on its way out).
            self.io_loop.add_callback(self._stop_watching_reads)
            return None
        return b""  # end-of-file: Tornado closes the stream

    def read_from_fd(self, buf):
        # Tornado's hook, here only for ``read_into`` (a buffer of the caller's).
        data = self._receive(len(buf))
        if data is None:
            return None
        buf[: len(data)] = data
        return len(data)

    def _read_to_buffer(self) -> int | None:
        """``IOStream._read_to_buffer`` without a new zero-filled read buffer per read.

        Tornado reads into a fresh ``bytearray(read_chunk_size)`` (64 KiB, zero-filled) and
        copies what arrived into its buffer: per request, 64 KiB of memory written for a few
        hundred bytes, which also pushes everything else out of the CPU's first-level cache.
        ``socket.recv`` allocates without filling and shrinks its result to what arrived.
        Errors and limits are handled as Tornado does.
        """
        if self._user_read_buffer:
            return super()._read_to_buffer()
        try:
            data = self._receive(self.read_chunk_size)
        except OSError as error:
            self.close(exc_info=error)
            if self._is_connreset(error):
                return None  # a reset is a close, not an error worth logging
            raise
        if data is None:
            return 0
        if not data:
            self.close()
            return 0
        self._read_buffer += data
        self._read_buffer_size += len(data)
        if self._read_buffer_size > self.max_buffer_size:
            gen_log.error("Reached maximum read buffer size")
            error = StreamBufferFullError("Reached maximum read buffer size")
            self.close(exc_info=error)
            raise error
        return len(data)

    def _stop_watching_reads(self) -> None:
        # Tornado re-adds read interest whenever the stream is idle; each such re-add costs one
        # wake-up that lands here again, never a busy loop.
        state = self._state
        if self.closed() or not self._holding_eof() or state is None or not state & IOLoop.READ:
            return
        self._state = state & ~IOLoop.READ
        self.io_loop.update_handler(self.fileno(), self._state)

    def _handle_events(self, fd, events: int) -> None:
        """``IOStream._handle_events`` of a server-side stream, keeping read interest.

        Tornado's version watches for reads while idle only if its buffer is empty; this one
        while less than one read chunk is buffered, so the request that arrived early costs
        no ``epoll_ctl``. A pipelining client is still throttled: past one chunk of unparsed
        data the socket is no longer read until the buffer is consumed.
        """
        if self.closed():
            gen_log.warning("Got events for closed stream %s", fd)
            return
        io_loop = self.io_loop
        try:
            if events & io_loop.READ:
                self._handle_read()
            if self.closed():
                return
            if events & io_loop.WRITE:
                self._handle_write()
            if self.closed():
                return
            if events & io_loop.ERROR:
                self.error = self.get_fd_error()
                io_loop.add_callback(self.close)  # after callbacks queued by the handlers
                return
            state = io_loop.ERROR
            if self._read_future is not None:
                state |= io_loop.READ
            if self._write_buffer:
                state |= io_loop.WRITE
            if state == io_loop.ERROR and self._read_buffer_size < self.read_chunk_size:
                state |= io_loop.READ
            if state != self._state:
                self._state = state
                io_loop.update_handler(self.fileno(), state)
        except UnsatisfiableReadError as error:
            gen_log.info("Unsatisfiable read, closing connection: %s", error)
            self.close(exc_info=error)
        except Exception as error:
            gen_log.error("Uncaught exception, closing connection.", exc_info=True)
            self.close(exc_info=error)
            raise
