"""Loading the user's handler and running it where it belongs.

A sync handler (``def handle(message)``) runs on a bounded pool of worker threads, with
Django's ``close_old_connections`` before and after each call, exactly as Django does around a
request: the ORM just works, and a connection broken by a database restart is replaced instead
of failing every later message. An async handler (``async def handle(message)``) runs on the
event loop; it must not block it (use ``sync_to_async`` for ORM calls there).
"""

import asyncio
import inspect
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections
from django.utils.module_loading import import_string


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
    """Runs one handler: on the loop when async, on ``threads`` worker threads when sync."""

    def __init__(self, handler, name: str, threads: int):
        self.handler = handler
        self.name = name
        self.is_async = is_async(handler)
        self.threads = threads
        self._pool = (
            None
            if self.is_async
            else ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hurricane-handler")
        )

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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run_sync, message, claim)

    def _run_sync(self, message, claim) -> bool:
        if not claim():
            return False
        close_old_connections()
        try:
            self.handler(message)
        finally:
            close_old_connections()
        return True

    def close(self) -> None:
        """Stop the pool without waiting: handlers past the drain timeout are abandoned."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
