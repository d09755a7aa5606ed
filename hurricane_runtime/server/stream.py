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
"""

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream


class AppStream(IOStream):
    """An ``IOStream`` that keeps a half-closed connection open for the response it owes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.response_owed = False  # set while a complete request waits for its response
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

    def _holding_eof(self) -> bool:
        return self.response_owed or self.writing()

    def read_from_fd(self, buf):
        if not self.peer_finished:
            try:  # IOStream.read_from_fd, inlined: this runs for every read
                read = self.socket.recv_into(buf, len(buf))
            except BlockingIOError:
                return None  # nothing yet
            if read:
                return read
            self.peer_finished = True
        if self._holding_eof():
            # Nothing to read: the socket stays open for the response. Stop watching it once
            # Tornado has finished handling this event (it re-adds read interest on its way out).
            self.io_loop.add_callback(self._stop_watching_reads)
            return None
        return 0  # end-of-file: Tornado closes the stream

    def _stop_watching_reads(self) -> None:
        # Tornado re-adds read interest whenever the stream is idle; each such re-add costs one
        # wake-up that lands here again, never a busy loop.
        state = self._state
        if self.closed() or not self._holding_eof() or state is None or not state & IOLoop.READ:
            return
        self._state = state & ~IOLoop.READ
        self.io_loop.update_handler(self.fileno(), self._state)
