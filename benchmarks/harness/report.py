"""Turn the result data into markdown tables and a target check."""

TARGETS = {
    "json_rps_ratio": 1.5,
    "orm_rps_ratio": 1.2,
    "probe_p99_blocking_ms": 10.0,
    "probe_p99_cpu_ms": 50.0,
    "probe_max_ms": 1000.0,
    "metrics_overhead_pct": 10.0,
}


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def spread(figures: dict, digits: int = 0) -> str:
    low, high = fmt(figures["min"], digits), fmt(figures["max"], digits)
    return f"{fmt(figures['median'], digits)} ({low}-{high})"


def throughput_table(summary: dict) -> list[str]:
    lines = [
        "| view | server | req/s median (min-max) | req/s vs gunicorn, paired median (min-max) "
        "| p99 ms median (min-max) | req per server CPU-s | per CPU-s vs gunicorn "
        "| others on core 0 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for view, per_server in summary.items():
        for name, figures in per_server.items():
            errors = figures["socket_errors"] + figures["non_2xx_3xx"]
            lines.append(
                f"| {view} | {name} | {spread(figures['rps'])} "
                f"| {spread(figures['paired_rps_ratio'], 2)} "
                f"| {spread(figures['p99_ms'], 1)} "
                f"| {fmt(figures['requests_per_cpu_s']['median'], 0)} "
                f"| {fmt(figures['cpu_efficiency_ratio'])}x "
                f"| {fmt(figures['others_core_share']['median'], 2)} | {errors} |"
            )
    return lines


def probe_table(probes: dict) -> list[str]:
    lines = [
        "| load | probe | samples | p50 ms | p99 ms | max ms | statuses | load req/s "
        "| others on core 0 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, result in probes.items():
        if scenario == "workers":
            continue
        load = result.get("load")
        load_text = (
            "idle" if load is None else f"{fmt(load['rps'], 0)} ({result['connections']} conn)"
        )
        label = scenario.replace("_", " ")
        for path, figures in result["probes"].items():
            statuses = ", ".join(f"{code}: {count}" for code, count in figures["statuses"].items())
            lines.append(
                f"| {label} | {path} | {figures['count']} | {fmt(figures['p50_ms'])} "
                f"| {fmt(figures['p99_ms'])} | {fmt(figures['max_ms'])} | {statuses} "
                f"| {load_text} | {fmt(result.get('others_core_share'))} |"
            )
    return lines


def sigterm_table(sigterm: dict) -> list[str]:
    lines = [
        "| server | ok | failed accepted | closed idle keep-alive | refused after close "
        "| `Connection: close` answers | exit code | s to exit | all outcomes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in sigterm.items():
        outcomes = result["outcomes"]
        lines.append(
            f"| {name} | {outcomes.get('ok', 0)} | {result['failed_accepted']} "
            f"| {outcomes.get('closed_idle_keepalive', 0)} | {outcomes.get('refused', 0)} "
            f"| {result['connection_close_responses']} | {fmt(result['exit_code'])} "
            f"| {fmt(result['seconds_to_exit'])} | {outcomes} |"
        )
    return lines


def startup_table(startup: dict) -> list[str]:
    lines = ["| server | spawn to ready, s: median (min-max) |", "| --- | --- |"]
    for name, result in startup.items():
        lines.append(f"| {name} | {spread(result['ready_s'], 2)} |")
    return lines


def target_checks(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, threshold, measured, met) for every target we have figures for."""
    checks = []
    summary = results.get("throughput", {}).get("summary", {})
    for view, key in (("json", "json_rps_ratio"), ("orm", "orm_rps_ratio")):
        serve = summary.get(view, {}).get("serve", {})
        measured = serve.get("paired_rps_ratio", {}).get("median")
        per_cpu = serve.get("cpu_efficiency_ratio")
        checks.append(
            (
                f"serve req/s on {view} vs gunicorn (paired by round)",
                f">= {TARGETS[key]}x",
                f"{fmt(measured)}x ({fmt(per_cpu)}x per server CPU-s)",
                # Met only if both hold: on a shared core a many-threaded server gets a bigger
                # share of the CPU than a one-thread one, which flatters the req/s ratio.
                None if measured is None else min(measured, per_cpu or 0) >= TARGETS[key],
            )
        )
    if "serve --no-metrics" in summary.get("json", {}):
        # Requests per server CPU-second: the throughput figure least moved by neighbours.
        on = summary["json"]["serve"]["requests_per_cpu_s"]["median"]
        off = summary["json"]["serve --no-metrics"]["requests_per_cpu_s"]["median"]
        overhead = round((off - on) / off * 100, 1) if on and off else None
        checks.append(
            (
                "metrics on vs --no-metrics, req per server CPU-s (json)",
                f"<= {TARGETS['metrics_overhead_pct']}% slower",
                f"{fmt(overhead, 1)}%",
                None if overhead is None else overhead <= TARGETS["metrics_overhead_pct"],
            )
        )
    probes = results.get("probes", {})
    for scenario, key in (("blocking", "probe_p99_blocking_ms"), ("cpu", "probe_p99_cpu_ms")):
        if scenario not in probes:
            continue
        figures = probes[scenario]["probes"].values()
        worst_p99 = max(f["p99_ms"] for f in figures)
        worst_max = max(f["max_ms"] for f in figures)
        checks.append(
            (
                f"probe p99 under {scenario} saturation",
                f"< {TARGETS[key]:g} ms",
                f"{fmt(worst_p99)} ms",
                worst_p99 < TARGETS[key],
            )
        )
        checks.append(
            (
                f"probe max under {scenario} saturation",
                "< 1000 ms",
                f"{fmt(worst_max)} ms",
                worst_max < TARGETS["probe_max_ms"],
            )
        )
    serve_sigterm = results.get("sigterm", {}).get("serve")
    if serve_sigterm:
        failed = serve_sigterm["failed_accepted"]
        checks.append(("failed accepted requests on SIGTERM", "0", str(failed), failed == 0))
    return checks


def targets_table(results: dict) -> list[str]:
    lines = ["| target | threshold | measured | met |", "| --- | --- | --- | --- |"]
    for name, threshold, measured, met in target_checks(results):
        verdict = "n/a" if met is None else ("yes" if met else "**NO**")
        lines.append(f"| {name} | {threshold} | {measured} | {verdict} |")
    return lines


def markdown(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"# Benchmark {meta['finished_at']} ({meta['mode']})",
        "",
        f"Command: `{meta['command']}` at {meta['revision']}  ",
        f"Database: {meta['database']}; pinning: {meta['pinning']}; "
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}",
        "",
    ]
    if "throughput" in results:
        parts += [
            "## Throughput (wrk, keep-alive, "
            f"{meta['connections']} connections, {meta['rounds']} rounds of "
            f"{meta['seconds']} s, medians)",
            "",
            *throughput_table(results["throughput"]["summary"]),
            "",
        ]
    if "probes" in results:
        parts += [
            f"## Probe latency ({results['probes']['workers']} workers)",
            "",
            *probe_table(results["probes"]),
            "",
        ]
    if "sigterm" in results:
        parts += ["## SIGTERM under load", "", *sigterm_table(results["sigterm"]), ""]
    if "startup" in results:
        parts += ["## Start-up", "", *startup_table(results["startup"]), ""]
    parts += ["## Targets", "", *targets_table(results), ""]
    for note in meta.get("notes", []):
        parts.append(f"- {note}")
    return "\n".join(parts)
