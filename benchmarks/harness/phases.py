"""The four measurements: throughput, probe latency under saturation, SIGTERM, start-up time.

Each phase starts the servers it needs, measures, stops them and returns plain data.
"""

import time
from pathlib import Path

from . import cpu, load
from .probe_sampler import ProbeSampler
from .procs import SERVER_CORE, Server, ServerSpec
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
    """SIGTERM all at once, then wait for each: their shutdown delays run in parallel."""
    for server in servers:
        if server.process.poll() is None:
            server.terminate()
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
                    runs.append(measured_run(server, view, path, connections, seconds))
                    runs[-1]["round"] = round_number + 1
                    say(describe_run(runs[-1]))
    finally:
        stop_all(servers)
    return {"runs": runs, "summary": summarise_throughput(runs, [s.name for s in specs])}


def measured_run(server: Server, view: str, path: str, connections: int, seconds: float) -> dict:
    """One wrk run plus the CPU the server (and its neighbours on its core) used meanwhile."""
    before = cpu.snapshot(SERVER_CORE, server.pid)
    result = load.run_wrk(server.url(path), connections, seconds)
    usage = cpu.usage_between(before, cpu.snapshot(SERVER_CORE, server.pid))
    per_cpu_second = result.requests / usage["server_cpu_s"] if usage["server_cpu_s"] else None
    return {
        "server": server.spec.name,
        "view": view,
        **result.as_dict(),
        **usage,
        "requests_per_cpu_s": round(per_cpu_second, 1) if per_cpu_second else None,
    }


def describe_run(run: dict) -> str:
    return (
        f"  round {run['round']} {run['view']:4} {run['server']:18} {run['rps']:7.0f} req/s"
        f"  p99 {run['p99_ms']:8.2f} ms  server {run['server_core_share']:.0%} of core 0,"
        f" others {run['others_core_share']:.0%}"
    )


def paired_ratios(runs: list[dict], view: str, name: str, key: str) -> list[float]:
    """``key`` of ``name`` divided by gunicorn's in the same round: noise hits both alike."""
    ratios = []
    for run in runs:
        if run["view"] != view or run["server"] != name:
            continue
        for other in runs:
            same_round = other["view"] == view and other["round"] == run["round"]
            if same_round and other["server"] == BASELINE and other[key] and run[key]:
                ratios.append(run[key] / other[key])
    return ratios


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
                "requests_per_cpu_s": median_and_spread(
                    [run["requests_per_cpu_s"] for run in mine if run["requests_per_cpu_s"]]
                ),
                "others_core_share": median_and_spread([run["others_core_share"] for run in mine]),
                "paired_rps_ratio": median_and_spread(paired_ratios(runs, view, name, "rps")),
                "socket_errors": sum(run["socket_errors"] for run in mine),
                "non_2xx_3xx": sum(run["non_2xx_3xx"] for run in mine),
            }
        baseline = per_server.get(BASELINE)
        for figures in per_server.values():
            figures["rps_ratio"] = ratio(figures["rps"]["median"], baseline["rps"]["median"])
            figures["p99_ratio"] = ratio(figures["p99_ms"]["median"], baseline["p99_ms"]["median"])
            figures["cpu_efficiency_ratio"] = ratio(
                figures["requests_per_cpu_s"]["median"], baseline["requests_per_cpu_s"]["median"]
            )
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
    before = cpu.snapshot(SERVER_CORE, server.pid)
    sampler.start()
    time.sleep(seconds - 1.0 if wrk else seconds)
    probes = sampler.stop()
    usage = cpu.usage_between(before, cpu.snapshot(SERVER_CORE, server.pid))
    result = {"probes": probes, "load_path": load_path, "connections": connections, **usage}
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
