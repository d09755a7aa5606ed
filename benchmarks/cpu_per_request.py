"""Server CPU time per request of `serve`: a figure a noisy, shared machine barely moves.

    python benchmarks/cpu_per_request.py                       # this tree's runtime
    python benchmarks/cpu_per_request.py --runtime /tmp/old    # another tree's hurricane_runtime

Starts `serve` pinned like the benchmark (core 0, wrk on core 1), warms each view up, then runs
wrk for ``--rounds`` runs of ``--seconds`` and divides the CPU time of the server's process
group (user + system, from /proc) by the requests wrk completed. Wall-clock req/s depends on
how much of the core the neighbours leave us; CPU time per request depends on what the server
does per request. ``--runtime`` puts another checkout's ``hurricane_runtime`` first on the
server's ``PYTHONPATH``, to compare two versions of the code one after the other (run both
twice, interleaved: the figure is steady, not immune). ``--gunicorn`` also measures gunicorn
(sync worker, one process) in the same run and prints the ratio. About 40 s per server.
``--threads`` also splits each process's CPU time and context switches (voluntary: the thread
waited, for the GIL, a socket or work; involuntary: it was preempted) per request between its
main thread (serve's IOLoop) and its other threads (serve's workers), summed over the rounds:
where the time goes, and how often threads sleep and wake per request.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from harness import cpu, load, procs
from run import SpecFactory, choose_database, prepare_database


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="/json/,/orm/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", default="auto", choices=("auto", "postgres", "sqlite"))
    parser.add_argument("--runtime", type=Path, help="a tree whose hurricane_runtime to run")
    parser.add_argument(
        "--gunicorn", action="store_true", help="also measure gunicorn (sync, 1 process)"
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="also print CPU and context switches per request per thread role",
    )
    parser.add_argument("serve_args", nargs="*", help="extra serve options, after --")
    return parser.parse_args(argv)


def measure(server, path: str, options) -> tuple[list[float], list[str]]:
    """Microseconds of server CPU per request, one figure per round; with ``--threads``, lines
    on the split per thread role over the rounds kept."""
    url = server.url(path)
    load.run_wrk(url, options.connections, 2)  # warm up: connections, caches, DB sessions
    figures = []
    roles: dict[str, list[float]] = {}
    requests = 0
    for _ in range(options.rounds):
        threads_before = cpu.group_thread_counters(server.pid) if options.threads else None
        before = cpu.group_cpu_seconds(server.pid)
        result = load.run_wrk(url, options.connections, options.seconds)
        used = cpu.group_cpu_seconds(server.pid) - before
        if result.requests and not result.non_2xx_3xx and not result.socket_errors:
            figures.append(used / result.requests * 1e6)
            if threads_before is not None:
                after = cpu.group_thread_counters(server.pid)
                for role, values in cpu.thread_roles_between(threads_before, after).items():
                    total = roles.setdefault(role, [0.0, 0.0, 0.0])
                    for index, value in enumerate(values):
                        total[index] += value
                requests += result.requests
        else:
            print(f"  {path}: discarded a round with errors: {result}", file=sys.stderr)
    lines = [
        f"    {role}: {seconds / requests * 1e6:.0f} us, switches {voluntary / requests:.2f} "
        f"voluntary + {involuntary / requests:.2f} involuntary per request"
        for role, (seconds, voluntary, involuntary) in sorted(roles.items())
        if seconds or voluntary or involuntary
    ]
    return figures, lines


def main(argv=None) -> int:
    options = parse_options(argv)
    procs.pin_harness_to_client_core()
    with tempfile.TemporaryDirectory(prefix="hurricane-cpu-") as scratch:
        database, database_env = choose_database(options.database, Path(scratch))
        env = procs.server_env(database_env)
        if options.runtime is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(options.runtime), env["PYTHONPATH"]])
        prepare_database(env)
        factory = SpecFactory(env, options.workers, procs.serve_help(env))
        specs = [factory.serve(*options.serve_args)]
        if options.gunicorn:
            specs.append(factory.gunicorn())
        results = {}
        thread_lines = {}
        for spec in specs:
            server = procs.Server(spec, Path(scratch) / "logs")
            try:
                server.wait_ready()
                results[spec.name] = {}
                for path in options.paths.split(","):
                    if path:
                        figures, lines = measure(server, path, options)
                        results[spec.name][path] = figures
                        thread_lines[spec.name, path] = lines
            finally:
                server.stop()
    runtime = options.runtime or procs.REPO_ROOT
    print(f"runtime {runtime}, {database}, serve {' '.join(options.serve_args)}".rstrip())
    medians = {}
    for name, by_path in results.items():
        for path, figures in by_path.items():
            shown = " ".join(f"{figure:.0f}" for figure in figures)
            medians[name, path] = statistics.median(figures) if figures else float("nan")
            print(
                f"  {name} {path}: {medians[name, path]:.0f} us server CPU per request "
                f"(rounds: {shown})"
            )
            for line in thread_lines.get((name, path), ()):
                print(line)
    if options.gunicorn:
        for path in options.paths.split(","):
            ratio = medians["gunicorn", path] / medians["serve", path]
            print(f"  {path}: serve does {ratio:.2f}x gunicorn's requests per server CPU-second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
