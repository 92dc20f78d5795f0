"""Run a command and read its own peak memory, for the benchmark scripts."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS in MB of `cmd`.

    The peak is VmHWM from /proc/PID/status, read while the command runs: wait4's
    ru_maxrss would also count the pages the child shared with its (large) parent
    between fork and exec.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = Path(f"/proc/{proc.pid}/status")
    peak_kb = 0
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass  # the process ended between poll() and the read
        time.sleep(0.02)
    return proc.returncode, time.perf_counter() - started, peak_kb / 1024
