"""Drive load with wrk (keep-alive connections, one thread, pinned to the client core)."""

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .procs import CLIENT_CORE, pinned

WRK_SCRIPT = Path(__file__).with_name("wrk_json.lua")


@dataclass
class WrkResult:
    """One bounded wrk run."""

    url: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect + read + write + timeout, as wrk counts them
    non_2xx_3xx: int

    def as_dict(self) -> dict:
        return asdict(self)


def wrk_command(url: str, connections: int, seconds: float, timeout_s: float) -> list[str]:
    argv = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        f"{timeout_s:g}s",
        "--script",
        str(WRK_SCRIPT),
        url,
    ]
    return pinned(argv, CLIENT_CORE)


def start_wrk(url: str, connections: int, seconds: float, timeout_s: float = 5.0):
    """Start wrk in the background (for runs that overlap with other measurements)."""
    return subprocess.Popen(
        wrk_command(url, connections, seconds, timeout_s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_wrk(process, url: str, connections: int, seconds: float) -> WrkResult:
    """Wait for a background wrk (bounded) and parse its JSON line."""
    try:
        stdout, stderr = process.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"wrk against {url} did not finish") from None
    return parse_wrk(stdout, stderr, url, connections, seconds)


def run_wrk(url: str, connections: int, seconds: float, timeout_s: float = 5.0) -> WrkResult:
    """One bounded wrk run against ``url``."""
    process = start_wrk(url, connections, seconds, timeout_s)
    return finish_wrk(process, url, connections, seconds)


def parse_wrk(stdout: str, stderr: str, url: str, connections: int, seconds: float) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data = json.loads(line.removeprefix("WRK_JSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no summary for {url}: {stdout}\n{stderr}")
    duration_s = data["duration_us"] / 1e6
    return WrkResult(
        url=url,
        connections=connections,
        seconds=round(duration_s, 2),
        requests=int(data["requests"]),
        rps=round(data["requests"] / duration_s, 1),
        p50_ms=round(data["p50_us"] / 1000, 2),
        p99_ms=round(data["p99_us"] / 1000, 2),
        max_ms=round(data["max_us"] / 1000, 2),
        socket_errors=int(
            data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
        ),
        non_2xx_3xx=int(data["status_errors"]),
    )
