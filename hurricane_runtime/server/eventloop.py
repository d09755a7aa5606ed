"""Which asyncio event loop ``serve`` runs on: uvloop when it is installed, else asyncio's own.

Tornado runs on whatever asyncio loop is running. uvloop (libuv, written in Cython) does the
loop's own work (polling, callbacks, socket readiness, the wake-ups from worker threads) in C
instead of Python, which is a good part of the IOLoop's cost per request. It is optional:
``auto`` uses it when the package is there, ``asyncio`` never does, ``uvloop`` insists (the
option is refused at start-up when uvloop is missing).
"""

import importlib.util
from collections.abc import Callable


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: str) -> Callable | None:
    """A factory for ``asyncio.Runner`` (None: asyncio's default loop)."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return None
    import uvloop

    return uvloop.new_event_loop


def loop_name(factory: Callable | None) -> str:
    return "asyncio" if factory is None else "uvloop"
