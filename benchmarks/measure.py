"""Run a command and read its own peak memory and CPU, for the benchmark scripts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Run(NamedTuple):
    code: int
    wall: float  # seconds
    peak_mb: float  # the command's and its children's peaks, summed
    own_cpu: float  # seconds of CPU of the command's process, last read before it ended
    children_cpu: float  # and of its children (worker processes)


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS in MB of `cmd` with its children."""
    run = measure(cmd, env)
    return run.code, run.wall, run.peak_mb


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """`cmd` run to its end, with its children (worker processes) read every 20 ms.

    The peaks are VmHWM from /proc/PID/status, read while the command runs (wait4's
    ru_maxrss would also count the pages the child shared with its large parent between
    fork and exec); their sum is an upper bound on what the processes held at once. CPU
    is utime + stime from /proc/PID/stat: the last 20 ms of each process may be missed.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        for pid in (proc.pid, *_children(proc.pid)):
            peak, used = _read(pid)
            peaks[pid] = max(peaks.get(pid, 0), peak)
            cpu[pid] = max(cpu.get(pid, 0.0), used)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    own = cpu.pop(proc.pid, 0.0)
    return Run(proc.returncode, wall, sum(peaks.values()) / 1024, own, sum(cpu.values()))


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
        return [int(child) for task in tasks for child in task.read_text().split()]
    except (OSError, ValueError):
        return []  # the process ended while it was read


def _read(pid: int) -> tuple[int, float]:
    """Peak RSS in KB and CPU seconds so far; zeros once the process has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    peak = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    return peak, (int(fields[11]) + int(fields[12])) / TICK
