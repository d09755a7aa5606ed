"""Loading the user's handler and running it where it belongs.

A sync handler (``def handle(message)``) runs on a bounded pool of worker threads, with
Django's ``close_old_connections`` before and after each call, exactly as Django does around a
request: the ORM just works, and a connection broken by a database restart is replaced instead
of failing every later message. An async handler (``async def handle(message)``) runs on the
event loop; it must not block it (use ``sync_to_async`` for ORM calls there).
"""

import asyncio
import inspect

from django.db import close_old_connections
from django.utils.module_loading import import_string

from ..server.pool import LoopChannel, WorkerPool


class HandlerError(ValueError):
    """The handler path does not lead to something that can handle messages."""


def load_handler(path: str):
    """Import ``path`` (``package.module.function``) and check it can be called."""
    if not path or "." not in path or any(c.isspace() for c in path):
        raise HandlerError(f"handler {path!r} is not a dotted path such as 'myapp.handlers.handle'")
    try:
        handler = import_string(path)
    except ImportError as error:
        raise HandlerError(f"cannot import handler {path!r}: {error}") from None
    if not callable(handler):
        raise HandlerError(
            f"handler {path!r} is a {type(handler).__name__}, not a function; "
            "point it at 'def handle(message)' or 'async def handle(message)'"
        )
    return handler


def is_async(handler) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - instances with async __call__
    return inspect.iscoroutinefunction(call)


class HandlerRunner:
    """Runs one handler: on the loop when async, on ``threads`` worker threads when sync.

    The threads are the app server's ``WorkerPool`` (daemon threads that close their database
    connections when they stop, results handed to the loop in batches): a handler still
    running when the drain timeout ends cannot keep the process from exiting.
    """

    def __init__(self, handler, name: str, threads: int):
        self.handler = handler
        self.name = name
        self.is_async = is_async(handler)
        self.threads = threads
        self._pool: WorkerPool | None = None
        self._channel: LoopChannel | None = None

    def start(self, asyncio_loop) -> None:
        """Start the worker threads of a sync handler (once, with the loop they report to)."""
        if not self.is_async and self._pool is None:
            self._channel = LoopChannel(asyncio_loop)
            self._pool = WorkerPool(self.threads, name="hurricane-handler")

    def alive(self) -> bool:
        return self._pool is None or self._pool.alive()

    async def run(self, message, claim) -> bool:
        """Run the handler on ``message`` unless ``claim()`` says it was handed back first.

        ``claim`` is called right before the handler starts (on the worker thread for a sync
        handler): a message still waiting for a thread when the drain begins is returned to
        the broker instead. Returns False when the message was not started; raises what the
        handler raised.
        """
        if self.is_async:
            if not claim():
                return False
            await self.handler(message)
            return True
        future = asyncio.get_running_loop().create_future()
        self._pool.submit(self._run_sync, message, claim, future)
        return await future

    def _run_sync(self, message, claim, future) -> None:
        post = self._channel.post
        try:
            if not claim():
                post(_settle_future, future, False, None)
                return
            close_old_connections()
            try:
                self.handler(message)
            finally:
                close_old_connections()
        except BaseException as error:  # handed to the awaiting coroutine
            post(_settle_future, future, None, error)
        else:
            post(_settle_future, future, True, None)

    def close(self) -> None:
        """Let the threads stop after their current message, without waiting for them."""
        if self._pool is not None:
            self._pool.shutdown(timeout=0)


def _settle_future(future, result, error) -> None:
    if future.done():  # the awaiting coroutine was cancelled (hard shutdown)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
