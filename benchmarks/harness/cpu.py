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
