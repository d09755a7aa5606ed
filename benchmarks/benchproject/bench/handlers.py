"""Message handlers of the consume benchmark (``benchmarks/consume.py``).

Each counting handler notes the time of the first and of the ``$BENCH_MESSAGES``-th message and
writes them to ``$BENCH_DONE_FILE``: the harness computes messages per second from the
consumer's own clock, so start-up and the harness's polling are not part of the figure.
"""

import os
import threading
import time

from bench.models import Item
from hurricane_runtime.amqp import apublish

# ``price`` of the rows the insert handler writes, so the harness can delete exactly them.
INSERTED = -1

_lock = threading.Lock()
_count = 0
_first = 0.0


def count_one() -> None:
    """Count a handled message (thread-safe); write the timings at the last one."""
    global _count, _first
    with _lock:
        _count += 1
        if _count == 1:
            _first = time.time()
        if _count == int(os.environ["BENCH_MESSAGES"]):
            with open(os.environ["BENCH_DONE_FILE"], "w") as done:
                done.write(f"{_first} {time.time()} {_count}\n")


async def noop(message):
    count_one()


# About 0.15 ms of pure Python per message on the benchmark machines: parsing and validating a
# sizeable payload, done on the loop as an async handler does.
COMPUTE_LOOPS = 5_000


async def compute(message):
    """CPU work on the loop for every message: a window of 50 is about 7 ms of it."""
    total = 0
    for number in range(COMPUTE_LOOPS):
        total += number * number
    count_one()


async def echo(message):
    """Consume and republish to ``reply_to`` with a publisher confirm."""
    await apublish(message.body, message.reply_to)


def insert(message):
    Item.objects.create(name=message.body.decode()[:100], price=INSERTED)
    count_one()
