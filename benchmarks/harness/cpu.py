"""CPU accounting from /proc, to tell the server's own work from its neighbours' noise.

On a shared machine other processes also run on the server's core. For every run we record
how much of that core the server got and how much went to others, and requests per CPU-second
of the server: a figure that stays meaningful when a neighbour steals half the core.
"""

import os
import time
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int) -> float:
    """Busy (non-idle, non-iowait) time of one core since boot."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                fields = [int(value) for value in line.split()[1:]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
                return (user + nice + system + irq + softirq + steal) / TICKS
    return 0.0


def _stat_fields(path: str) -> list[str] | None:
    """The fields of a /proc ``stat`` file after "pid (comm) "; None if it is gone."""
    try:
        with open(path) as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _group_processes(pgid: int):
    """(pid, stat fields) of every live process in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(f"/proc/{entry}/stat")
            if fields is not None and int(fields[2]) == pgid:  # field 5: process group
                yield int(entry), fields


def _cpu_ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # fields 14, 15 of the line: utime, stime


def process_cpu_seconds(pid: int) -> float:
    """User + system time of one process (its threads included)."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    if fields is None:
        raise ProcessLookupError(pid)
    return _cpu_ticks(fields) / TICKS


def group_cpu_seconds(pgid: int) -> float:
    """User + system time of every live process in process group ``pgid``."""
    return sum(_cpu_ticks(fields) for _, fields in _group_processes(pgid)) / TICKS


def group_thread_counters(pgid: int) -> dict[tuple[int, int], tuple[float, int, int]]:
    """(pid, tid) -> (CPU seconds, voluntary, involuntary context switches) of every thread of
    every live process in process group ``pgid``."""
    counters = {}
    for pid, _ in _group_processes(pgid):
        try:
            tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue  # the process ended meanwhile
        for tid in tids:
            fields = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as status:
                    lines = status.read().splitlines()
            except OSError:
                continue  # the thread ended meanwhile
            if fields is None:
                continue
            switches = {
                name: int(value)
                for name, _, value in (line.partition(":\t") for line in lines)
                if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
            }
            counters[pid, tid] = (
                _cpu_ticks(fields) / TICKS,
                switches.get("voluntary_ctxt_switches", 0),
                switches.get("nonvoluntary_ctxt_switches", 0),
            )
    return counters


def thread_roles_between(before: dict, after: dict) -> dict[str, list[float]]:
    """CPU seconds and voluntary and involuntary switches between two ``group_thread_counters``,
    summed per role: each process's main thread, and all its other threads together (the
    IOLoop and the worker threads of ``serve``). Threads alive only in ``after`` count from 0.
    """
    roles: dict[str, list[float]] = {}
    for (pid, tid), (seconds, voluntary, involuntary) in after.items():
        start = before.get((pid, tid), (0.0, 0, 0))
        role = f"{pid} main thread" if tid == pid else f"{pid} other threads"
        total = roles.setdefault(role, [0.0, 0.0, 0.0])
        total[0] += seconds - start[0]
        total[1] += voluntary - start[1]
        total[2] += involuntary - start[2]
    return roles


@dataclass
class CpuSnapshot:
    at: float
    core_busy: float
    server: float


def snapshot(core: int, pgid: int) -> CpuSnapshot:
    return CpuSnapshot(time.perf_counter(), core_busy_seconds(core), group_cpu_seconds(pgid))


def usage_between(before: CpuSnapshot, after: CpuSnapshot) -> dict:
    """Shares of the server core used by the server and by everything else."""
    elapsed = after.at - before.at
    server = after.server - before.server
    others = max(0.0, (after.core_busy - before.core_busy) - server)
    return {
        "server_cpu_s": round(server, 2),
        "server_core_share": round(server / elapsed, 2),
        "others_core_share": round(others / elapsed, 2),
    }
