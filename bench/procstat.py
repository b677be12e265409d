"""What /proc says about a process and the machine: peak RSS, CPU seconds, busy CPU seconds.

psutil is not a dependency, and Linux's /proc is all a benchmark on this machine needs. CPU is
read in clock ticks and returned in seconds so a run can show who used the two cores: the
contender, the sandbox, the broker, or something else on the machine (other jobs disturb
numbers, and the table should say so rather than hide it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MiB; 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its waited-for children; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may contain spaces; the fields after its ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / _TICKS


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle on the whole machine since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle, iowait = values[3], values[4]
    return (sum(values) - idle - iowait) / _TICKS


def pids_with_argument(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (finds the broker JVM by its dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fragment.encode() in cmdline:
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far of each group of processes, and of the whole machine."""

    contender: float
    sandbox: float
    broker: float
    harness: float
    machine: float


@dataclass(frozen=True)
class CpuShares:
    """Average cores used over an interval (1.0 = one core busy throughout)."""

    contender: float
    sandbox: float
    broker: float
    other: float


class CpuMeter:
    """Snapshots the CPU of the contender(s), the sandbox, the broker and this process."""

    def __init__(self, sandbox_pid: int, broker_pids: list[int]) -> None:
        self._sandbox_pid = sandbox_pid
        self._broker_pids = broker_pids

    def snapshot(self, contender_pids: list[int]) -> CpuSnapshot:
        return CpuSnapshot(
            contender=sum(cpu_seconds(pid) for pid in contender_pids),
            sandbox=cpu_seconds(self._sandbox_pid),
            broker=sum(cpu_seconds(pid) for pid in self._broker_pids),
            harness=cpu_seconds(os.getpid()),
            machine=machine_busy_seconds(),
        )

    @staticmethod
    def shares(before: CpuSnapshot, after: CpuSnapshot, seconds: float) -> CpuShares:
        """Cores used between two snapshots; ``other`` is everything not ours (other jobs)."""
        span = max(seconds, 1e-9)
        contender = after.contender - before.contender
        sandbox = after.sandbox - before.sandbox
        broker = after.broker - before.broker
        harness = after.harness - before.harness
        machine = after.machine - before.machine
        other = max(0.0, machine - contender - sandbox - broker - harness)
        return CpuShares(contender / span, sandbox / span, broker / span, other / span)
