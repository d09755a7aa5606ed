"""Celery probes: the runtime's HTTP probe against an exec of `celery inspect ping`.

    python benchmarks/celery_probes.py            # 25-45 s
    nox -s benchmark_celery

Starts one prefork worker of the runtime's test project (tests/runtime/testproject, with
`hurricane_runtime.celery.install(app)`) on RabbitMQ at 127.0.0.1:5672 and its own queue, then
probes it the two ways, first idle, then while every pool child spins on a CPU-bound task:

- exec: `celery -A testproject inspect ping -d <node> -t 5`, what an exec probe runs; its
  CPU is the exec'd process and its children (getrusage), plus what the worker parent spent;
- http: GET /alive on the probe port with a new connection per probe (as the kubelet does);
  its CPU is what the worker parent spent (the client's side is the kubelet's, in Go, and is
  reported apart from a Python client's).

Prints a markdown report and writes every figure to benchmarks/results/celery-latest.json.
"""

import argparse
import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery import Celery
from harness import stats
from harness.cpu import process_cpu_seconds
from kombu import Connection

ROOT = Path(__file__).resolve().parent.parent
TESTPROJECT = ROOT / "tests" / "runtime" / "testproject"
RESULTS = Path(__file__).resolve().parent / "results" / "celery-latest.json"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    def __init__(self, concurrency: int, scratch: Path):
        self.queue = f"hurricane-bench-{uuid.uuid4().hex[:10]}"
        self.node = f"bench-{uuid.uuid4().hex[:8]}@localhost"
        self.probe_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HURRICANE_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
            "PYTHONPATH": os.pathsep.join([str(TESTPROJECT), str(ROOT)]),
            "TESTPROJECT_BROKER_URL": BROKER,
            "TESTPROJECT_CELERY_QUEUE": self.queue,
            "HURRICANE_BIND": "127.0.0.1",
            "HURRICANE_PROBE_PORT": str(self.probe_port),
        }
        self.log = open(scratch / "worker.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "testproject", "worker", "-n", self.node]
            + ["--concurrency", str(concurrency), "--without-gossip", "--loglevel=WARNING"],
            cwd=TESTPROJECT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if http_probe(self.probe_port, "/startup")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("the worker did not start; see its log")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()
        with Connection(BROKER, connect_timeout=5) as connection:
            connection.default_channel.queue_delete(self.queue)


def http_probe(port: int, path: str = "/alive") -> tuple[int, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.perf_counter() - started


def exec_probe(worker: Worker, timeout: float) -> tuple[int, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "testproject", "inspect", "ping"]
        + ["-d", worker.node, "-t", str(timeout)],
        cwd=TESTPROJECT,
        env=worker.env,
        capture_output=True,
        timeout=timeout + 60,
    )
    return result.returncode, time.perf_counter() - started


def measure(worker: Worker, kind: str, count: int, pause: float, timeout: float) -> dict:
    """``count`` probes of one kind; latency, answers and CPU per probe."""
    latencies, answers = [], []
    worker_before = process_cpu_seconds(worker.proc.pid)
    children_before = children_cpu_seconds()
    client_before = time.process_time()
    for _ in range(count):
        if kind == "http":
            status, seconds = http_probe(worker.probe_port)
            answers.append(status == 200)
        else:
            code, seconds = exec_probe(worker, timeout)
            answers.append(code == 0)
        latencies.append(seconds)
        time.sleep(pause)
    worker_cpu = process_cpu_seconds(worker.proc.pid) - worker_before
    probe_cpu = children_cpu_seconds() - children_before
    client_cpu = time.process_time() - client_before
    return {
        "kind": kind,
        "probes": count,
        "answered": sum(answers),
        "latency": stats.latency_summary_ms(latencies),
        "worker_cpu_ms_per_probe": round(worker_cpu / count * 1000, 3),
        "exec_cpu_ms_per_probe": round(probe_cpu / count * 1000, 3),
        "python_client_cpu_ms_per_probe": round(client_cpu / count * 1000, 3),
    }


def per_probe_cpu(result: dict) -> float:
    """CPU of one probe on the pod: the worker's share plus an exec'd process, if any."""
    return result["worker_cpu_ms_per_probe"] + result["exec_cpu_ms_per_probe"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=2, help="pool children (2)")
    parser.add_argument("--pings", type=int, default=4, help="exec probes per phase (4)")
    parser.add_argument("--probes", type=int, default=300, help="HTTP probes per phase (300)")
    parser.add_argument("--ping-timeout", type=float, default=5.0, help="inspect ping -t (5)")
    options = parser.parse_args(argv)
    results = {"concurrency": options.concurrency, "phases": {}}
    with tempfile.TemporaryDirectory() as scratch:
        worker = Worker(options.concurrency, Path(scratch))
        try:
            worker.wait_started()
            print("idle ...", file=sys.stderr)
            results["phases"]["idle"] = [
                measure(worker, "exec", options.pings, 0.2, options.ping_timeout),
                measure(worker, "http", options.probes, 0.01, options.ping_timeout),
            ]
            busy_seconds = options.pings * (options.ping_timeout + 5) + options.probes * 0.05 + 10
            client = Celery("bench", broker=BROKER)
            client.conf.task_default_queue = worker.queue
            client.conf.task_default_queue_type = "quorum"
            for _ in range(options.concurrency):
                client.send_task("items.tasks.spin", args=(busy_seconds,))
            time.sleep(2)  # every child picked its task up
            print(f"every child busy for {busy_seconds:.0f}s ...", file=sys.stderr)
            results["phases"]["busy"] = [
                measure(worker, "http", options.probes, 0.01, options.ping_timeout),
                measure(worker, "exec", options.pings, 0.2, options.ping_timeout),
            ]
        finally:
            worker.stop()

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


def report(results: dict) -> str:
    lines = [
        f"Celery worker, prefork, {results['concurrency']} children; "
        "CPU per probe = worker parent + exec'd process",
        "",
        "| phase | probe | answered | p50 ms | p99 ms | max ms | CPU ms/probe "
        "| worker ms/probe | Python client ms/probe |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase, measured in results["phases"].items():
        by_kind = {result["kind"]: result for result in measured}
        for kind in ("exec", "http"):
            result = by_kind[kind]
            latency = result["latency"]
            lines.append(
                f"| {phase} | {kind} | {result['answered']}/{result['probes']} "
                f"| {latency['p50_ms']} | {latency['p99_ms']} | {latency['max_ms']} "
                f"| {per_probe_cpu(result):.3f} | {result['worker_cpu_ms_per_probe']} "
                f"| {result['python_client_cpu_ms_per_probe']} |"
            )
        ratio = per_probe_cpu(by_kind["exec"]) / max(per_probe_cpu(by_kind["http"]), 1e-6)
        lines.append(f"| {phase} | exec / http CPU | {ratio:.0f}x | | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
