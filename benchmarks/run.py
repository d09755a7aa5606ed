"""serve vs gunicorn (sync, one process) on the same Django views. See benchmarks/README.md.

python benchmarks/run.py            # full run, about 10 minutes
python benchmarks/run.py --quick    # about 75 s smoke run
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import phases, procs, report

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SIGTERM_PATHS = ["/json/"] * 6 + ["/block/"] * 4  # in-flight slow requests when SIGTERM lands


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 75 s smoke run")
    parser.add_argument("--rounds", type=int, help="throughput rounds per server and view (5)")
    parser.add_argument("--seconds", type=float, help="length of one throughput run (10)")
    parser.add_argument("--warmup", type=float, help="warm-up per server and view (3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--workers", type=int, default=4, help="serve worker threads (4)")
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        help="experiment: run serve with sys.setswitchinterval(MS / 1000) (Python's default 5)",
    )
    parser.add_argument("--probe-seconds", type=float, help="length of each probe scenario (10)")
    parser.add_argument("--startup-repeats", type=int, help="spawns per server (5)")
    parser.add_argument(
        "--database",
        choices=["auto", "postgres", "sqlite"],
        default="auto",
        help="auto: PostgreSQL on 127.0.0.1:5432 db test when reachable, else SQLite",
    )
    parser.add_argument(
        "--phases",
        default="throughput,probes,sigterm,startup",
        help="comma-separated subset of throughput,probes,sigterm,startup",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    options = parser.parse_args(argv)
    quick = options.quick
    defaults = {
        "rounds": (5, 2),
        "seconds": (10.0, 2.0),
        "warmup": (3.0, 1.0),
        "probe_seconds": (10.0, 4.0),
        "startup_repeats": (5, 1),
    }
    for name, (full, short) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, short if quick else full)
    options.phases = [phase.strip() for phase in options.phases.split(",") if phase.strip()]
    return options


def postgres_reachable() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=2
        ):
            return True
    except psycopg.Error:
        return False


def choose_database(choice: str, scratch: Path) -> tuple[str, dict[str, str]]:
    """The database name for the report and the environment that selects it."""
    if choice == "postgres" or (choice == "auto" and postgres_reachable()):
        return "PostgreSQL 127.0.0.1:5432 db test", {"BENCH_DATABASE": "postgres"}
    path = scratch / "bench.sqlite3"
    return f"SQLite {path.name}", {"BENCH_DATABASE": "sqlite", "BENCH_SQLITE_PATH": str(path)}


def prepare_database(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(procs.BENCH_PROJECT / "manage.py"), "bench_setup"],
        env=env,
        check=True,
        timeout=60,
        cwd=procs.BENCH_PROJECT,
    )


class SpecFactory:
    """Builds server specs on fresh ports; knows which serve options exist."""

    def __init__(self, env, workers: int, serve_help: str, switch_interval_ms=None):
        self.env = env
        self.switch_interval_ms = switch_interval_ms
        self.workers = workers
        self.serve_help = serve_help

    def supports(self, flag: str) -> bool:
        return flag in self.serve_help

    def gunicorn(self) -> procs.ServerSpec:
        return procs.gunicorn_spec(self.env, procs.free_port())

    def serve(self, *extra: str, name: str = "serve") -> procs.ServerSpec:
        return procs.serve_spec(
            self.env,
            procs.free_port_pair(),
            self.workers,
            list(extra),
            name,
            self.switch_interval_ms,
        )

    def serve_for_sigterm(self) -> procs.ServerSpec:
        """A short shutdown delay and a bounded drain keep the test short."""
        extra = []
        if self.supports("--shutdown-delay"):
            extra += ["--shutdown-delay", "1"]
        if self.supports("--drain-timeout"):
            extra += ["--drain-timeout", "10"]
        return self.serve(*extra)

    def throughput_specs(self) -> list[procs.ServerSpec]:
        specs = [self.gunicorn(), self.serve()]
        if self.supports("--no-metrics"):
            specs.append(self.serve("--no-metrics", name="serve --no-metrics"))
        return specs


def runtime_revision() -> str:
    """The commit measured, flagged when hurricane_runtime/ has uncommitted changes."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=procs.REPO_ROOT, capture_output=True, text=True, timeout=30
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "hurricane_runtime")
    return commit + (" + uncommitted hurricane_runtime changes" if dirty else "")


def fresh_log_dir() -> Path:
    """Server logs of this run, kept after it (git-ignored) for a look when a figure is odd."""
    log_dir = RESULTS_DIR / "logs"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.mkdir(parents=True)
    return log_dir


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(options: argparse.Namespace, scratch: Path) -> dict:
    procs.pin_harness_to_client_core()
    database, database_env = choose_database(options.database, scratch)
    env = procs.server_env(database_env)
    prepare_database(env)
    factory = SpecFactory(env, options.workers, procs.serve_help(env), options.switch_interval_ms)
    log_dir = fresh_log_dir()
    notes = []
    if not factory.serve_help:
        notes.append("`manage.py serve` is not available: only gunicorn was measured.")
    results = {
        "meta": {
            "command": "python benchmarks/run.py " + shlex.join(sys.argv[1:]),
            "mode": "quick" if options.quick else "full",
            "database": database,
            "revision": runtime_revision(),
            "pinning": "server on core 0, clients on core 1"
            if procs.pinning_available()
            else "none (fewer than 2 cores)",
            "connections": options.connections,
            "rounds": options.rounds,
            "seconds": options.seconds,
            "workers": options.workers,
            "switch_interval_ms": options.switch_interval_ms,
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "notes": notes,
        }
    }
    serve_ok = bool(factory.serve_help)
    if "throughput" in options.phases:
        say("throughput")
        specs = factory.throughput_specs() if serve_ok else [factory.gunicorn()]
        results["throughput"] = phases.measure_throughput(
            specs,
            log_dir,
            options.rounds,
            options.seconds,
            options.warmup,
            options.connections,
            say,
        )
    if "probes" in options.phases and serve_ok:
        say("probe latency")
        results["probes"] = phases.measure_probe_latency(
            factory.serve(),
            factory.gunicorn(),
            options.workers,
            options.probe_seconds,
            log_dir,
            say,
        )
    if "sigterm" in options.phases:
        say("SIGTERM under load")
        specs = [factory.gunicorn()] + ([factory.serve_for_sigterm()] if serve_ok else [])
        results["sigterm"] = phases.measure_sigterm(
            specs, log_dir, SIGTERM_PATHS, before_s=2.0, exit_timeout=40.0, say=say
        )
    if "startup" in options.phases:
        say("start-up")
        results["startup"] = phases.measure_startup(
            lambda: [factory.gunicorn()] + ([factory.serve()] if serve_ok else []),
            options.startup_repeats,
            log_dir,
            say,
        )
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["meta"]["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return results


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (or SIGHUP) must still run the clean-up that stops every server we started.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda signum, frame: sys.exit(128 + signum))
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="hurricane-bench-") as scratch:
        results = run(options, Path(scratch))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print(report.markdown(results))
    say(f"results written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
