"""What the benchmarks read about processes and the machine from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """The processes *pid* started directly."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time *pid* has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of *pid*, of its live children, and of the children it has reaped: a server
    such as PostgreSQL whose backends come and go."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    live = 0.0
    for child in children(pid):
        try:
            live += cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):  # ended between listing and reading
            continue
    return cpu_seconds(pid) + reaped + live


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine, every core (from /proc/stat)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of *pid*, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def open_files_limit(pid: int) -> int:
    """The soft limit of open files *pid* runs with."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    return int(limits.split("Max open files")[1].split()[0])
