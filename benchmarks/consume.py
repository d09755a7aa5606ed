"""manage.py consume vs FastStream 0.7 on the same RabbitMQ and handlers. See docs/benchmarks.md.

    python benchmarks/consume.py            # 3 interleaved rounds, about 4 minutes
    python benchmarks/consume.py --quick    # 1 round of small runs, about a minute
    python benchmarks/consume.py --quick --scenarios pingpong --rounds 6   # (a) only
    python benchmarks/consume.py --hurricane162-python ENV/bin/python   # django-hurricane too

Scenarios, each run for both consumers on a fresh queue declared alike (durable quorum queue,
delivery limit, dead-letter exchange):

- pingpong: one message in flight: the harness publishes, the handler republishes the body to
  ``reply_to`` with a publisher confirm, the harness waits for it; round trips per second and
  the consumer's CPU;
- noop: the queue is filled first, then an async handler that does nothing consumes it with
  prefetch 50; messages per second by the consumer's own clock, and probe latency meanwhile;
- insert: the same with a sync handler doing one ORM insert (prefetch 10; FastStream calls the
  ORM through ``sync_to_async``, Django's way from a coroutine);
- compute (only when asked for: ``--scenarios compute``): like noop, but the async handler does
  about 0.15 ms of CPU work per message on the loop (a prefetch window is about 7 ms of it),
  to see whether probe latency follows the loop's work (``--messages`` applies).

Consumers run pinned to core 0, the harness on core 1, as in ``benchmarks/run.py``. With
``--hurricane162-python`` (an interpreter with django-hurricane 1.6.2 installed: it needs
prometheus-client < 0.18, so it has an environment of its own), django-hurricane 1.6.2's
``consume`` runs the same scenarios (handlers in ``bench/hurricane162.py``).
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
from harness import cpu, procs
from harness.probe_sampler import ProbeSampler
from run import choose_database

from hurricane_runtime.amqp.topology import Topology

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CONSUMERS = ("consume", "faststream")
HURRICANE162 = "hurricane162"
LABELS = {"consume": "consume", "faststream": "FastStream", HURRICANE162: "django-hurricane 1.6.2"}
HURRICANE162_HANDLERS = {"echo": "Echo", "noop": "Noop", "insert": "Insert"}
HURRICANE162_SCENARIOS = ("pingpong", "noop", "insert")
SCENARIOS = ("pingpong", "noop", "insert", "compute")
DEFAULT_SCENARIOS = ("pingpong", "noop", "insert")
PREFETCH = {"noop": 50, "insert": 10, "echo": 1, "compute": 50}
# Scenarios with a probe sampler on ``consume`` (the queue is filled first, then drained).
PROBED = ("noop", "compute")
DELETE_INSERTED = (
    "from bench.handlers import INSERTED; from bench.models import Item; "
    "Item.objects.filter(price=INSERTED).delete()"
)


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of small runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3; quick 1)")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(DEFAULT_SCENARIOS),
        help="scenarios to run, in this order (pingpong noop insert)",
    )
    parser.add_argument("--messages", type=int, help="messages of the noop run (20000; 5000)")
    parser.add_argument("--inserts", type=int, help="messages of the insert run (3000; 1000)")
    parser.add_argument("--pingpong-seconds", type=float, help="length of a ping-pong run (10; 3)")
    parser.add_argument(
        "--database",
        choices=["auto", "postgres", "sqlite"],
        default="auto",
        help="for (c): auto picks PostgreSQL on 127.0.0.1:5432 db test when reachable",
    )
    parser.add_argument(
        "--hurricane162-python",
        type=Path,
        help="Python of an environment with django-hurricane==1.6.2: run its consume too",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "consume-latest.json")
    options = parser.parse_args(argv)
    defaults = {"rounds": (3, 1), "messages": (20000, 5000), "inserts": (3000, 1000)}
    defaults["pingpong_seconds"] = (10.0, 3.0)
    for name, (full, quick) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, quick if options.quick else full)
    return options


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- broker side of the harness ------------------------------------------------------------


async def declare_and_fill(queue: str, count: int) -> None:
    """Declare the queue as ``consume`` does and put ``count`` persistent messages in it."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await Topology(queue).declare(channel)
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            f"message {number}".encode(),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=queue,
                    )
                    for number in range(start, min(count, start + 1000))
                )
            )


async def delete(queue: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for name in (queue, f"{queue}.dlq", f"{queue}.replies"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPException):
                await channel.queue_delete(name)
        for exchange in (f"{queue}.dlx", f"{queue}.{HURRICANE162}"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPException):
                await channel.exchange_delete(exchange)


async def consumers_on(queue: str) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.consumer_count


async def pingpong(queue: str, seconds: float) -> tuple[int, int]:
    """Serial round trips (publish, wait for the republished reply) for ``seconds``.

    Every ping has a body of its own and only the reply with that body ends its round trip: a
    consumer that sent anything else to ``reply_to`` (FastStream answers every message that has
    a ``reply_to`` with the handler's return value unless told not to) would otherwise end the
    next round trip early. Returns the round trips and the count of such stray replies.
    """
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        replies = await channel.declare_queue(
            f"{queue}.replies", durable=True, arguments={"x-queue-type": "quorum"}
        )
        loop = asyncio.get_running_loop()
        waiting: dict[bytes, asyncio.Future] = {}
        strays = 0

        async def on_reply(message):
            nonlocal strays
            await message.ack()
            future = waiting.pop(message.body, None)
            if future is None:
                strays += 1
            elif not future.done():
                future.set_result(None)

        await replies.consume(on_reply)
        count = 0
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            body = f"ping {count}".encode()
            waiting[body] = reply = loop.create_future()
            await channel.default_exchange.publish(
                aio_pika.Message(body, reply_to=replies.name), routing_key=queue
            )
            await asyncio.wait_for(reply, 10)
            count += 1
        return count, strays


# -- consumers -------------------------------------------------------------------------------


def start(kind: str, scenario: str, queue: str, env: dict, log_dir: Path) -> procs.Server:
    prefetch = PREFETCH[scenario]
    if kind == HURRICANE162:
        return start_hurricane162(scenario, queue, env, log_dir)
    if kind == "consume":
        probe_port = procs.free_port()
        argv = [
            sys.executable,
            "manage.py",
            "consume",
            f"bench.handlers.{scenario}",
            "--queue",
            queue,
            "--concurrency",
            str(prefetch),
            "--bind",
            procs.HOST,
            "--probe-port",
            str(probe_port),
        ]
        spec = procs.ServerSpec("consume", argv, probe_port, "/ready", probe_port, env)
    else:
        arguments = json.dumps(Topology(queue).queue_arguments())
        argv = [sys.executable, str(HERE / "faststream_app.py"), scenario, queue, str(prefetch)]
        spec = procs.ServerSpec("faststream", [*argv, arguments], 0, "", None, env)
    server = procs.Server(spec, log_dir)
    if kind == "consume":
        server.wait_ready(60)
    else:
        wait_consuming(server, queue)
    return server


def start_hurricane162(scenario: str, queue: str, env: dict, log_dir: Path) -> procs.Server:
    """django-hurricane 1.6.2's ``consume``: broker address as options, user in the env."""
    broker = urlsplit(AMQP_URL)
    argv = [
        env["BENCH_HURRICANE162_PYTHON"],
        "manage.py",
        "consume",
        f"bench.hurricane162.{HURRICANE162_HANDLERS[scenario]}",
        "--queue",
        queue,
        # It binds the queue to this (topic) exchange and refuses the default one.
        "--exchange",
        f"{queue}.{HURRICANE162}",
        "--amqp-host",
        broker.hostname,
        "--amqp-port",
        str(broker.port or 5672),
        "--probe-port",
        str(procs.free_port()),
    ]
    run_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "benchproject.settings_hurricane162",
        "AMQP_USER": broker.username or "guest",
        "AMQP_PASSWORD": broker.password or "guest",
        "BENCH_PREFETCH": str(PREFETCH[scenario]),
        # Its handlers run on the IOLoop, where Django refuses ORM calls
        # (SynchronousOnlyOperation) unless told that blocking the loop is intended.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
    }
    server = procs.Server(procs.ServerSpec(HURRICANE162, argv, 0, "", None, run_env), log_dir)
    wait_consuming(server, queue)
    return server


def wait_consuming(server: procs.Server, queue: str) -> None:
    """Wait until the broker lists a consumer on ``queue`` (for consumers without probes)."""
    deadline = time.monotonic() + 60
    while asyncio.run(consumers_on(queue)) < 1:
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.spec.name} did not consume:\n{server.log_tail()}")
        time.sleep(0.05)


def batch_run(kind, scenario, count, env, log_dir, scratch) -> dict:
    """Fill a queue with ``count`` messages, let the consumer drain it, time it."""
    queue = f"bench-consume-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare_and_fill(queue, count))
    done = scratch / f"{queue}.done"
    run_env = {**env, "BENCH_MESSAGES": str(count), "BENCH_DONE_FILE": str(done)}
    server = start(kind, scenario, queue, run_env, log_dir)
    sampler = None
    if kind == "consume":
        sampler = ProbeSampler(server.spec.probe_port, ["/ready", "/alive"], interval=0.02)
        sampler.start()
    before = cpu.snapshot(procs.SERVER_CORE, server.pid)
    probes = None
    try:
        deadline = time.monotonic() + 300
        while not done.exists() or not done.read_text().strip():
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not finish {scenario}:\n{server.log_tail()}")
            time.sleep(0.05)
        # The consumer's share of its core and what others (the broker, too) took of it.
        usage = cpu.usage_between(before, cpu.snapshot(procs.SERVER_CORE, server.pid))
    finally:
        if sampler is not None:
            probes = sampler.stop()
        server.stop()
        asyncio.run(delete(queue))
    first, last, handled = done.read_text().split()
    seconds = float(last) - float(first)
    result = {
        "messages": int(handled),
        "seconds": round(seconds, 3),
        "per_second": round((int(handled) - 1) / seconds, 1),
        "consumer_cpu_seconds": usage["server_cpu_s"],
        "consumer_core_share": usage["server_core_share"],
        "others_core_share": usage["others_core_share"],
    }
    if probes is not None:
        result["probes"] = probes
    return result


def pingpong_run(kind, seconds, env, log_dir) -> dict:
    queue = f"bench-consume-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare_and_fill(queue, 0))
    server = start(kind, "echo", queue, env, log_dir)
    try:
        asyncio.run(pingpong(queue, 1.0))  # warm-up
        cpu_before = cpu.group_cpu_seconds(server.pid)
        began = time.perf_counter()
        trips, strays = asyncio.run(pingpong(queue, seconds))
        elapsed = time.perf_counter() - began
        cpu_seconds = cpu.group_cpu_seconds(server.pid) - cpu_before
    finally:
        server.stop()
        asyncio.run(delete(queue))
    return {
        "round_trips": trips,
        "stray_replies": strays,
        "per_second": round(trips / elapsed, 1),
        "consumer_cpu_share": round(cpu_seconds / elapsed, 2),
    }


def main(argv=None) -> int:
    options = parse_options(argv)
    procs.pin_harness_to_client_core()
    scratch = Path(tempfile.mkdtemp(prefix="consume-bench-"))
    database, db_env = choose_database(options.database, scratch)
    env = {**procs.server_env(db_env), "BENCH_AMQP_URL": AMQP_URL}
    env["HURRICANE_AMQP_URL"] = AMQP_URL
    env["HURRICANE_SHUTDOWN_DELAY"] = "0"
    consumers = CONSUMERS
    if options.hurricane162_python:
        consumers += (HURRICANE162,)
        env["BENCH_HURRICANE162_PYTHON"] = str(options.hurricane162_python)
    manage(env, "bench_setup")
    runs: dict = {kind: {scenario: [] for scenario in options.scenarios} for kind in consumers}
    for round_number in range(options.rounds):
        order = consumers if round_number % 2 == 0 else tuple(reversed(consumers))
        for kind in order:
            for scenario in options.scenarios:
                if kind == HURRICANE162 and scenario not in HURRICANE162_SCENARIOS:
                    continue
                say(f"round {round_number + 1}: {kind} {scenario}")
                runs[kind][scenario].append(run_scenario(kind, scenario, options, env, scratch))
    report = {
        "options": {key: str(value) for key, value in vars(options).items()},
        "database": database,
        "runs": runs,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2))
    print_report(runs, database)
    say(f"raw figures: {options.output}; logs: {scratch / 'logs'}")
    return 0


def run_scenario(kind: str, scenario: str, options, env: dict, scratch: Path) -> dict:
    log_dir = scratch / "logs"
    if scenario == "pingpong":
        return pingpong_run(kind, options.pingpong_seconds, env, log_dir)
    if scenario in PROBED:
        return batch_run(kind, scenario, options.messages, env, log_dir, scratch)
    try:
        return batch_run(kind, "insert", options.inserts, env, log_dir, scratch)
    finally:
        manage(env, "shell", "-c", DELETE_INSERTED)


def manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=procs.BENCH_PROJECT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def print_report(runs: dict, database: str) -> None:
    """A table of medians (ratio: consume / FastStream), then ping-pong details and probes."""
    kinds = list(runs)

    def median(kind, scenario, key):
        return statistics.median(run[key] for run in runs[kind][scenario])

    print(f"| scenario | {' | '.join(f'{LABELS[kind]} msg/s' for kind in kinds)} | ratio |")
    print(f"| --- | {' | '.join('---' for _ in kinds)} | --- |")
    labels = {
        "pingpong": "(a) ping-pong, one in flight, republish with confirm",
        "noop": "(b) no-op async handler, prefetch 50",
        "insert": f"(c) sync ORM insert ({database}), prefetch 10",
        "compute": "async handler with 0.15 ms of CPU per message, prefetch 50",
    }
    for scenario, label in labels.items():
        if scenario not in runs["consume"]:
            continue
        rates = {
            kind: median(kind, scenario, "per_second") for kind in kinds if runs[kind][scenario]
        }
        cells = " | ".join(f"{rates[kind]:.0f}" if kind in rates else "-" for kind in kinds)
        print(f"| {label} | {cells} | {rates['consume'] / rates['faststream']:.2f} |")
    if "pingpong" in runs["consume"]:
        print()
        for kind in kinds:
            rates = ", ".join(f"{run['per_second']:.0f}" for run in runs[kind]["pingpong"])
            share = median(kind, "pingpong", "consumer_cpu_share")
            print(f"ping-pong of {kind}: round trips/s by run {rates}; CPU {share:.2f} of a core")
        strays = sum(run["stray_replies"] for kind in kinds for run in runs[kind]["pingpong"])
        if strays:
            print(f"stray replies (not the answer to the ping in flight): {strays}")
    for scenario in PROBED:
        print_probes(scenario, runs["consume"].get(scenario, ()))


def print_probes(scenario: str, consume_runs) -> None:
    """Probe p99 of ``consume`` by round, with its CPU per message and the neighbours' share."""
    worst = [
        max(path["p99_ms"] for path in run["probes"].values())
        for run in consume_runs
        if run.get("probes")
    ]
    if worst:
        print(f"probe p99 during {scenario}, consume: {max(worst):.1f} ms (worst path and round)")
        for number, run in enumerate(consume_runs, 1):
            p99 = " / ".join(f"{path['p99_ms']:.1f}" for path in run["probes"].values())
            print(
                f"  round {number}: {run['per_second']:.0f} msg/s, probe p99 {p99} ms, "
                f"{run['consumer_cpu_seconds'] / run['messages'] * 1e6:.0f} us CPU per message, "
                f"others took {run['others_core_share']:.2f} of core 0"
            )


if __name__ == "__main__":
    sys.exit(main())
