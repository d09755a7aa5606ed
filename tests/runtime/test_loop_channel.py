"""LoopChannel: what worker threads post runs on the loop's thread, every item, in order per
thread, outside the posting thread's context, on asyncio's loop and on uvloop."""

import asyncio
import contextvars
import os
import sys
import threading
import types

import pytest

from hurricane_runtime.server import pool
from hurricane_runtime.server.pool import LoopChannel

LOOPS = ["asyncio", "uvloop"]
# A hang guard, not a timing assertion: a lost wake-up leaves items waiting for ever.
GUARD_SECONDS = 10

request_id = contextvars.ContextVar("request_id", default=None)


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(kind: str, main):
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


@pytest.fixture
def eager_thread_switches():
    """Switch threads as often as CPython allows, so that posts land inside the drains."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("kind", LOOPS)
def test_every_item_posted_by_racing_threads_runs_on_the_loop_thread(kind, eager_thread_switches):
    threads, items = 4, 20_000  # many wake-ups racing the drains: a lost one would hang

    async def main(loop):
        channel = LoopChannel(loop)
        seen = []
        done = asyncio.Event()

        def record(poster, index):
            seen.append((threading.get_ident(), poster, index))
            if len(seen) == threads * items:
                done.set()

        def post_all(poster):
            for index in range(items):
                channel.post(record, poster, index)

        posters = [threading.Thread(target=post_all, args=(n,)) for n in range(threads)]
        for poster in posters:
            poster.start()
        await asyncio.wait_for(done.wait(), GUARD_SECONDS)
        for poster in posters:
            poster.join()
        return threading.get_ident(), seen

    loop_thread, seen = run(kind, main)
    assert {thread for thread, _, _ in seen} == {loop_thread}
    for poster in range(threads):
        assert [index for _, who, index in seen if who == poster] == list(range(items))


@pytest.mark.parametrize("kind", LOOPS)
def test_items_run_outside_the_posting_threads_context(kind):
    async def main(loop):
        channel = LoopChannel(loop)
        got = loop.create_future()

        def post():
            request_id.set("abc")  # a worker runs each request in a context of its own
            channel.post(lambda: got.set_result(request_id.get()))

        thread = threading.Thread(target=post)
        thread.start()
        result = await asyncio.wait_for(got, GUARD_SECONDS)
        thread.join()
        return result

    assert run(kind, main) is None


@pytest.mark.parametrize("kind", LOOPS)
def test_an_item_posted_before_the_loop_runs_is_not_lost(kind):
    loop = new_loop(kind)
    try:
        channel = LoopChannel(loop)  # built on a start-up thread, before the loop runs
        got = loop.create_future()
        channel.post(got.set_result, "early")
        assert loop.run_until_complete(asyncio.wait_for(got, GUARD_SECONDS)) == "early"
    finally:
        loop.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_a_post_landing_while_the_loop_empties_the_pipe_is_not_lost(kind, monkeypatch):
    """The race the stress test above can only hope to hit, set up on purpose."""

    async def main(loop):
        channel = LoopChannel(loop)
        ran = []
        last = loop.create_future()

        def read_racing_a_post(fd, size):
            if not ran:  # the first drain: another thread posts right as the loop reads
                poster = threading.Thread(target=channel.post, args=(ran.append, "raced"))
                poster.start()
                poster.join()
            return os.read(fd, size)

        monkeypatch.setattr(
            pool, "os", types.SimpleNamespace(read=read_racing_a_post, write=os.write)
        )
        channel.post(ran.append, "first")

        async def both_ran():
            while len(ran) < 2:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(both_ran(), GUARD_SECONDS)
        poster = threading.Thread(target=channel.post, args=(last.set_result, "last"))
        poster.start()
        poster.join()
        return ran, await asyncio.wait_for(last, GUARD_SECONDS)

    assert run(kind, main) == (["first", "raced"], "last")
