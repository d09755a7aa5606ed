"""The four measurements: throughput, probe latency under saturation, SIGTERM, start-up time.

Each phase starts the servers it needs, measures, stops them and returns plain data.
"""

import time
from pathlib import Path

from . import load
from .probe_sampler import ProbeSampler
from .procs import Server, ServerSpec
from .shutdown_client import run_sigterm_test
from .stats import median_and_spread, ratio

THROUGHPUT_VIEWS = {"json": "/json/", "orm": "/orm/"}
PROBE_PATHS = ["/alive", "/ready"]
BASELINE = "gunicorn"


def start_all(specs: list[ServerSpec], log_dir: Path) -> list[Server]:
    servers = [Server(spec, log_dir) for spec in specs]
    try:
        for server in servers:
            server.wait_ready()
    except Exception:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[Server]) -> None:
    for server in servers:
        server.stop()


def measure_throughput(specs, log_dir, rounds, seconds, warmup_s, connections, say) -> dict:
    """Interleaved bounded wrk runs per server and view; medians over rounds."""
    servers = start_all(specs, log_dir)
    runs = []
    try:
        for server in servers:
            for path in THROUGHPUT_VIEWS.values():
                load.run_wrk(server.url(path), connections, warmup_s)
        for round_number in range(rounds):
            # Rotate the order each round so a noisy neighbour does not always hit one server.
            shift = round_number % len(servers)
            order = servers[shift:] + servers[:shift]
            for view, path in THROUGHPUT_VIEWS.items():
                for server in order:
                    result = load.run_wrk(server.url(path), connections, seconds)
                    say(
                        f"  round {round_number + 1} {view:4} {server.spec.name:18} "
                        f"{result.rps:8.0f} req/s  p99 {result.p99_ms:7.2f} ms"
                    )
                    runs.append(
                        {
                            "server": server.spec.name,
                            "view": view,
                            "round": round_number + 1,
                            **result.as_dict(),
                        }
                    )
    finally:
        stop_all(servers)
    return {"runs": runs, "summary": summarise_throughput(runs, [s.name for s in specs])}


def summarise_throughput(runs: list[dict], server_names: list[str]) -> dict:
    """Per view and server: median/min/max of req/s and p99, and ratios to gunicorn."""
    summary = {}
    for view in THROUGHPUT_VIEWS:
        per_server = {}
        for name in server_names:
            mine = [run for run in runs if run["view"] == view and run["server"] == name]
            per_server[name] = {
                "rps": median_and_spread([run["rps"] for run in mine]),
                "p99_ms": median_and_spread([run["p99_ms"] for run in mine]),
                "socket_errors": sum(run["socket_errors"] for run in mine),
                "non_2xx_3xx": sum(run["non_2xx_3xx"] for run in mine),
            }
        baseline = per_server.get(BASELINE)
        for figures in per_server.values():
            figures["rps_ratio"] = ratio(figures["rps"]["median"], baseline["rps"]["median"])
            figures["p99_ratio"] = ratio(figures["p99_ms"]["median"], baseline["p99_ms"]["median"])
        summary[view] = per_server
    return summary


def sample_probes_under_load(
    server: Server, probe_port: int, paths, load_path, connections, seconds
) -> dict:
    """Probe latency while wrk keeps ``connections`` busy on ``load_path`` (or idle if None)."""
    sampler = ProbeSampler(probe_port, paths)
    wrk = None
    if load_path is not None:
        wrk = load.start_wrk(server.url(load_path), connections, seconds, timeout_s=10)
        time.sleep(1.0)  # let the pool fill before sampling
    sampler.start()
    time.sleep(seconds - 1.0 if wrk else seconds)
    probes = sampler.stop()
    result = {"probes": probes, "load_path": load_path, "connections": connections}
    if wrk is not None:
        result["load"] = load.finish_wrk(wrk, server.url(load_path), connections, seconds).as_dict()
    return result


def measure_probe_latency(serve_spec, gunicorn_spec, workers, seconds, log_dir, say) -> dict:
    """Probe p50/p99/max idle, under blocking saturation and under CPU saturation."""
    scenarios = {
        "idle": (None, 0),
        "blocking": ("/block/", workers * 4),
        "cpu": ("/cpu/", workers * 2),
    }
    results = {"workers": workers}
    (server,) = start_all([serve_spec], log_dir)
    try:
        for name, (load_path, connections) in scenarios.items():
            say(f"  serve probes, {name} ({connections} connections on {load_path})")
            results[name] = sample_probes_under_load(
                server, serve_spec.probe_port, PROBE_PATHS, load_path, connections, seconds
            )
    finally:
        stop_all([server])
    # For contrast: gunicorn has no probe port, a health check waits in line with the traffic.
    (server,) = start_all([gunicorn_spec], log_dir)
    try:
        say("  gunicorn app-port health check, blocking (4 connections on /block/)")
        results["gunicorn_blocking_contrast"] = sample_probes_under_load(
            server, gunicorn_spec.port, ["/json/"], "/block/", 4, seconds
        )
    finally:
        stop_all([server])
    return results


def measure_sigterm(specs, log_dir, paths, before_s, exit_timeout, say) -> dict:
    """SIGTERM each server under load; count what happened to every request."""
    results = {}
    for spec in specs:
        (server,) = start_all([spec], log_dir)
        try:
            say(f"  {spec.name}: SIGTERM after {before_s}s of load")
            results[spec.name] = run_sigterm_test(server, paths, before_s, exit_timeout)
        finally:
            stop_all([server])
    return results


def measure_startup(make_specs, repeats, log_dir, say) -> dict:
    """Seconds from spawn to ready, ``repeats`` times per server, interleaved."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        for spec in make_specs():
            server = Server(spec, log_dir)
            try:
                samples.setdefault(spec.name, []).append(server.wait_ready())
            finally:
                server.stop()
    for name, values in samples.items():
        say(f"  {name}: {', '.join(f'{value:.2f}' for value in values)} s")
    return {
        name: {"ready_s": median_and_spread(values), "samples": [round(v, 3) for v in values]}
        for name, values in samples.items()
    }
