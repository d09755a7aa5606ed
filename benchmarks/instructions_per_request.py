"""Instructions per request of `serve`, counted by valgrind: the same on a busy or a quiet machine.

    apt-get install -y valgrind
    python benchmarks/instructions_per_request.py                     # this tree's runtime
    python benchmarks/instructions_per_request.py --runtime /tmp/old  # another tree's

Runs `serve` under callgrind with instrumentation off while it starts, warms each view up,
then switches instrumentation on, zeroes the counters, sends ``--requests`` requests on
keep-alive connections and reads the instructions the server process executed. That count
does not depend on what the neighbours do, so two versions of the code can be compared on a
shared machine, change by change. It is not a speed: cache misses and system calls cost more
than their instruction count says, and valgrind runs the threads one at a time. The database
(a separate process) is not counted. About a minute per run with the defaults.
"""

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import procs
from run import SpecFactory, choose_database, prepare_database


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="/json/,/orm/")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", default="auto", choices=("auto", "postgres", "sqlite"))
    parser.add_argument("--runtime", type=Path, help="a tree whose hurricane_runtime to run")
    parser.add_argument("serve_args", nargs="*", help="extra serve options, after --")
    return parser.parse_args(argv)


def drive(port: int, path: str, requests: int, connections: int) -> None:
    """``requests`` GETs of ``path``, split over keep-alive connections; all must be 200."""
    failures = []

    def client(count: int) -> None:
        conn = http.client.HTTPConnection(procs.HOST, port, timeout=120)
        try:
            for _ in range(count):
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(response.status)
        finally:
            conn.close()

    share, extra = divmod(requests, connections)
    threads = [
        threading.Thread(target=client, args=(share + (index < extra),))
        for index in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests to {path} failed: {failures[:5]}")


def callgrind_control(*args: str) -> str:
    result = subprocess.run(
        ["callgrind_control", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout


def counted_instructions(pid: int, out_dir: Path) -> int:
    """Dump the counters of ``pid`` and return the instructions since they were zeroed."""
    before = set(out_dir.iterdir())
    callgrind_control("--dump=measured", str(pid))
    for _ in range(600):
        new = [path for path in set(out_dir.iterdir()) - before if path.stat().st_size]
        for path in new:
            match = re.search(r"^(?:summary|totals): (\d+)", path.read_text(), re.MULTILINE)
            if match:
                return int(match.group(1))
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def main(argv=None) -> int:
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="hurricane-callgrind-") as scratch:
        scratch = Path(scratch)
        database, database_env = choose_database(options.database, scratch)
        env = procs.server_env(database_env)
        if options.runtime is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(options.runtime), env["PYTHONPATH"]])
        prepare_database(env)
        out_dir = scratch / "callgrind"
        out_dir.mkdir()
        spec = SpecFactory(env, options.workers, procs.serve_help(env)).serve(*options.serve_args)
        spec.argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out_dir}/callgrind.%p",
            *spec.argv,
        ]
        server = procs.Server(spec, scratch / "logs")
        results = {}
        try:
            server.wait_ready(timeout=600)
            for path in options.paths.split(","):
                drive(spec.port, path, 50, options.connections)  # warm up, not counted
                callgrind_control("--instr=on", str(server.pid))
                callgrind_control("--zero", str(server.pid))
                drive(spec.port, path, options.requests, options.connections)
                results[path] = counted_instructions(server.pid, out_dir) / options.requests
                callgrind_control("--instr=off", str(server.pid))
        finally:
            server.stop(timeout=120)
    runtime = options.runtime or procs.REPO_ROOT
    print(f"runtime {runtime}, {database}, serve {' '.join(options.serve_args)}".rstrip())
    for path, per_request in results.items():
        print(f"  {path}: {per_request / 1000:.0f} k instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
