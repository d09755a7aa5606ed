"""Websockets and async views: `serve` vs uvicorn vs daphne on the same Django/Channels app.

    nox -s benchmark_websockets                 # full run, about 3 minutes
    nox -s benchmark_websockets -- --quick      # about a minute, rough figures
    nox -s benchmark_websockets -- --phases idle # memory of idle websockets only

Every server runs the benchmark project's ASGI application (``benchproject/asgi.py``,
settings ``benchproject.settings_ws``: an echo consumer, a group consumer on the Redis pub/sub
layer, an async view) pinned to core 0; the clients run here, on core 1. Per server, in turn:

- echo round trip of a 32-byte text message: p50/p99 with one client sending one message at a
  time, and messages/s plus p99 with 16 such clients at once;
- memory: resident set size added by N idle websockets (default 5,000), per socket and total;
- async view: requests/s of ``/async/hello/`` under wrk (16 connections);
- group delivery: two processes of the same server, one client on each process in a group;
  the time from ``group_send`` on the first to the message arriving through the second, p99.

Figures are only comparable within one run (same machine, same moment): the report shows
ratios against uvicorn. Results: a markdown table on stdout, the raw numbers in
``benchmarks/results/websockets-latest.json``.
"""

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

from harness import cpu, load, procs
from harness.stats import percentile, ratio
from websockets.asyncio.client import connect

RESULTS = Path(__file__).resolve().parent / "results"
SERVERS = ("serve", "uvicorn", "daphne")
PHASES = ("echo", "async", "idle", "group")
MESSAGE = "x" * 32


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, rough figures")
    parser.add_argument("--idle-sockets", type=int, default=None, help="default 5000 (quick 1000)")
    parser.add_argument("--seconds", type=float, default=None, help="per load phase (quick 2)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="which phases to run, e.g. idle (memory only: load-independent on a busy machine)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--output", type=Path, default=RESULTS / "websockets-latest.json")
    options = parser.parse_args(argv)
    if options.idle_sockets is None:
        options.idle_sockets = 1000 if options.quick else 5000
    if options.seconds is None:
        options.seconds = 2.0 if options.quick else 8.0
    options.phases = options.phases.split(",")
    unknown = set(options.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))} (known: {', '.join(PHASES)})")
    return options


def spec(name: str, env: dict, port: int) -> procs.ServerSpec:
    python, app = sys.executable, "benchproject.asgi:application"
    if name == "serve":
        return procs.serve_spec(env, port, None, ["--websockets", "--shutdown-delay", "0"])
    if name == "uvicorn":
        argv = [python, "-m", "uvicorn", app, "--host", procs.HOST, "--port", str(port)]
        argv += ["--lifespan", "off", "--no-access-log"]
        return procs.ServerSpec(name, argv, port, "/json/", env=env)
    argv = [python, "-m", "daphne", "-b", procs.HOST, "-p", str(port), "-v", "0", app]
    return procs.ServerSpec(name, argv, port, "/json/", env=env)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def echo_latencies(url: str, seconds: float, count: int | None = None) -> list[float]:
    """Round trips of one client, one message at a time, for ``seconds`` (or ``count``)."""
    latencies = []
    async with connect(url, max_size=None, ping_interval=None) as ws:
        for _ in range(50):  # warm-up
            await ws.send(MESSAGE)
            await ws.recv()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and (count is None or len(latencies) < count):
            started = time.perf_counter()
            await ws.send(MESSAGE)
            await ws.recv()
            latencies.append(time.perf_counter() - started)
    return latencies


async def echo_phase(server: procs.Server, seconds: float) -> dict:
    url = f"ws://{procs.HOST}:{server.spec.port}/ws/echo/"
    single = await echo_latencies(url, seconds)
    cpu_before = cpu.group_cpu_seconds(server.pid)
    many = await asyncio.gather(*(echo_latencies(url, seconds) for _ in range(16)))
    cpu_spent = cpu.group_cpu_seconds(server.pid) - cpu_before
    together = [latency for client in many for latency in client]
    return {
        # Server CPU per echo: steadier than messages/s on a machine shared with other work.
        "echo_16_cpu_us_per_message": round(cpu_spent / len(together) * 1e6, 1),
        "echo_1_p50_ms": round(percentile(single, 50) * 1000, 3),
        "echo_1_p99_ms": round(percentile(single, 99) * 1000, 3),
        "echo_16_messages_per_s": round(len(together) / seconds),
        "echo_16_p99_ms": round(percentile(together, 99) * 1000, 3),
    }


async def idle_phase(server: procs.Server, count: int) -> dict:
    url = f"ws://{procs.HOST}:{server.spec.port}/ws/echo/"
    await echo_latencies(url, 0.1, count=10)
    await asyncio.sleep(0.5)
    before = rss_bytes(server.pid)
    sockets = []
    for start in range(0, count, 250):
        batch = [connect(url, ping_interval=None) for _ in range(min(250, count - start))]
        sockets += await asyncio.gather(*batch)
    await asyncio.sleep(2.0)
    after = rss_bytes(server.pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    added = after - before
    return {
        "idle_sockets": count,
        "idle_added_mb": round(added / 2**20, 1),
        "idle_kb_per_socket": round(added / count / 1024, 1),
    }


async def group_phase(first: int, second: int, messages: int = 200) -> dict:
    """Delivery time of group messages sent through ``first``, received through ``second``."""
    path = "/ws/group/"
    async with (
        connect(f"ws://{procs.HOST}:{first}{path}", ping_interval=None) as sender,
        connect(f"ws://{procs.HOST}:{second}{path}", ping_interval=None) as listener,
    ):
        await asyncio.sleep(0.5)  # both subscriptions settled
        latencies = []

        async def listen():
            while len(latencies) < messages:
                sent = float(await listener.recv())
                latencies.append(time.perf_counter() - sent)

        async def drain_sender():  # the sender is in the group too
            for _ in range(messages):
                await sender.recv()

        tasks = [asyncio.create_task(listen()), asyncio.create_task(drain_sender())]
        for _ in range(messages):
            await sender.send(repr(time.perf_counter()))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return {
        "group_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "group_p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


def async_view_phase(server: procs.Server, seconds: float) -> dict:
    url = server.url("/async/hello/")
    load.run_wrk(url, 16, 1)  # warm-up
    cpu_before = cpu.group_cpu_seconds(server.pid)
    wrk = load.run_wrk(url, 16, seconds)
    cpu_spent = cpu.group_cpu_seconds(server.pid) - cpu_before
    return {
        "async_view_rps": round(wrk.rps),
        "async_view_cpu_us_per_request": round(cpu_spent / max(1, wrk.rps * seconds) * 1e6, 1),
    }


def redis_reachable(url: str) -> bool:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=2).close()
        return True
    except OSError:
        return False


def measure(name: str, env: dict, options, logs: Path) -> dict:
    result: dict = {"server": name}
    server = procs.Server(spec(name, env, procs.free_port_pair()), logs)
    try:
        server.wait_ready()
        if "echo" in options.phases:
            result |= asyncio.run(echo_phase(server, options.seconds))
        if "async" in options.phases:
            result |= async_view_phase(server, options.seconds)
        if "idle" in options.phases:
            result |= asyncio.run(idle_phase(server, options.idle_sockets))
        if "group" in options.phases and redis_reachable(options.redis_url):
            second = procs.Server(spec(name, env, procs.free_port_pair()), logs)
            try:
                second.wait_ready()
                result |= asyncio.run(group_phase(server.spec.port, second.spec.port))
            finally:
                second.stop()
    finally:
        server.stop()
    print(f"{name}: {result}", file=sys.stderr)
    return result


def report(results: list[dict]) -> str:
    baseline = next((r for r in results if r["server"] == "uvicorn"), None)
    rows = [
        ("echo p50, 1 client (ms)", "echo_1_p50_ms"),
        ("echo p99, 1 client (ms)", "echo_1_p99_ms"),
        ("echo messages/s, 16 clients", "echo_16_messages_per_s"),
        ("echo p99, 16 clients (ms)", "echo_16_p99_ms"),
        ("server CPU per echo, 16 clients (us)", "echo_16_cpu_us_per_message"),
        ("async view req/s", "async_view_rps"),
        ("server CPU per async request (us)", "async_view_cpu_us_per_request"),
        ("RSS added by idle sockets (MB)", "idle_added_mb"),
        ("RSS per idle socket (KiB)", "idle_kb_per_socket"),
        ("group delivery p50 (ms)", "group_p50_ms"),
        ("group delivery p99 (ms)", "group_p99_ms"),
    ]
    names = [r["server"] for r in results]
    lines = [
        "| metric | " + " | ".join(names) + " | serve / uvicorn |",
        "|---" * (len(names) + 2) + "|",
    ]
    for title, key in rows:
        values = [r.get(key) for r in results]
        serve = next((r.get(key) for r in results if r["server"] == "serve"), None)
        versus = ratio(serve, baseline.get(key)) if baseline else None
        cells = ["-" if v is None else str(v) for v in values]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {versus or '-'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    options = parse_options(argv)
    procs.pin_harness_to_client_core()
    with tempfile.TemporaryDirectory(prefix="hurricane-ws-bench-") as scratch:
        env = procs.server_env(
            {"BENCH_DATABASE": "sqlite", "BENCH_SQLITE_PATH": f"{scratch}/bench.sqlite3"}
        )
        env["DJANGO_SETTINGS_MODULE"] = "benchproject.settings_ws"
        env["BENCH_REDIS_URL"] = options.redis_url
        results = [
            measure(name, env, options, Path(scratch) / "logs")
            for name in options.servers.split(",")
        ]
    RESULTS.mkdir(exist_ok=True)
    options.output.write_text(
        json.dumps(
            {"options": vars(options) | {"output": str(options.output)}, "results": results},
            indent=2,
        )
    )
    print(report(results))
    print(
        f"\nidle sockets: {options.idle_sockets}; load phases: {options.seconds:g}s; "
        f"pinned: {procs.pinning_available()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
