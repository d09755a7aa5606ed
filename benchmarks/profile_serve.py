"""Profile `serve` under wrk load on one view with py-spy; print the hottest functions.

    pip install py-spy
    python benchmarks/profile_serve.py --path /json/ --seconds 10

Writes the raw collapsed stacks (``results/profile.txt``, feed them to flamegraph.pl or
speedscope for a picture), then prints the top functions by self and by inclusive samples.
"""

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import load, procs
from run import RESULTS_DIR, SpecFactory, choose_database, prepare_database


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="/json/")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every thread, idle waits included (default: only the GIL holder)",
    )
    parser.add_argument("serve_args", nargs="*", help="extra serve options, after --")
    return parser.parse_args(argv)


def record(pid: int, seconds: int, rate: int, raw: Path, gil_only: bool) -> None:
    """Sample ``pid`` without pausing it (``--nonblocking``).

    With ``gil_only`` only the thread holding the GIL is sampled: on one core that is where the
    Python time goes, and threads parked in ``queue.get`` or ``epoll`` do not dilute the shares.
    """
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds)]
    command += ["--rate", str(rate), "--format", "raw", "--output", str(raw), "--nonblocking"]
    if gil_only:
        command.append("--gil")
    subprocess.run(
        procs.pinned(command, procs.CLIENT_CORE),
        check=True,
        timeout=seconds + 60,
        capture_output=True,
    )


def hottest(raw: Path, top: int) -> str:
    """Self and inclusive sample shares per function from collapsed stacks."""
    self_counts: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        self_counts[frames[-1]] += samples
        # Inclusive time per function, whatever line of it is on the stack.
        for function in {frame.rpartition(":")[0] for frame in frames}:
            inclusive[function] += samples
    lines = [f"{total} samples"]
    for title, counter in (("self", self_counts), ("inclusive", inclusive)):
        lines.append(f"\n top {top} by {title} time")
        for frame, samples in counter.most_common(top):
            lines.append(f"  {samples / total * 100:5.1f}%  {frame}")
    return "\n".join(lines)


def main(argv=None) -> int:
    options = parse_options(argv)
    procs.pin_harness_to_client_core()
    with tempfile.TemporaryDirectory(prefix="hurricane-profile-") as scratch:
        _, database_env = choose_database("auto", Path(scratch))
        env = procs.server_env(database_env)
        prepare_database(env)
        factory = SpecFactory(env, options.workers, procs.serve_help(env))
        server = procs.Server(factory.serve(*options.serve_args), Path(scratch) / "logs")
        try:
            server.wait_ready()
            load.run_wrk(server.url(options.path), options.connections, 3)  # warm up
            wrk = load.start_wrk(server.url(options.path), options.connections, options.seconds + 2)
            RESULTS_DIR.mkdir(exist_ok=True)
            raw = RESULTS_DIR / "profile.txt"
            record(server.pid, options.seconds, options.rate, raw, not options.all_threads)
            result = load.finish_wrk(
                wrk, server.url(options.path), options.connections, options.seconds + 2
            )
        finally:
            server.stop()
    print(f"{options.path}: {result.rps:.0f} req/s, p99 {result.p99_ms:.2f} ms while profiled")
    print(hottest(raw, options.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
