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


def group_cpu_seconds(pgid: int) -> float:
    """User + system time of every live process in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:  # field 5 of the line: process group
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / TICKS


def group_thread_counters(pgid: int) -> dict[tuple[int, int], tuple[float, int, int]]:
    """(pid, tid) -> (CPU seconds, voluntary, involuntary context switches) of every thread of
    every live process in process group ``pgid``."""
    counters = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
            if int(text[text.rindex(")") + 2 :].split()[2]) != pgid:
                continue
            tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        except (OSError, ValueError):
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    text = stat.read()
                with open(f"/proc/{pid}/task/{tid}/status") as status:
                    lines = status.read().splitlines()
            except OSError:
                continue  # the thread ended meanwhile
            fields = text[text.rindex(")") + 2 :].split()
            switches = {
                name: int(value)
                for name, _, value in (line.partition(":\t") for line in lines)
                if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
            }
            counters[pid, tid] = (
                (int(fields[11]) + int(fields[12])) / TICKS,
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
