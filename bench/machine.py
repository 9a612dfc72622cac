"""Where the machine's CPU goes during a run, from /proc: each control-plane process, the
operator, and this process, which holds the bare chain, the observer and the node agent and
reaps the pods' processes. With the machine's busy time beside them, a run shows which part
of the 2 cores was saturated and the operator's own share."""

from __future__ import annotations

import os
from pathlib import Path

from bench.idle import TICKS, cpu_seconds

BENCH = "bench process (chain, observer, node agent, pods)"
MACHINE = "machine busy"


def _machine_busy_seconds() -> float:
    """All cores' busy time since boot: everything /proc/stat counts but idle and iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def cpu_sample(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process, of this process and its reaped children,
    and of the whole machine."""
    times = os.times()
    sample = {name: cpu_seconds(pid) for name, pid in pids.items()}
    sample[BENCH] = times.user + times.system + times.children_user + times.children_system
    sample[MACHINE] = _machine_busy_seconds()
    return sample


def cpu_since(before: dict[str, float], pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds spent since `before` was sampled, by the same names."""
    now = cpu_sample(pids)
    return {name: now[name] - spent for name, spent in before.items()}


def busy_share(cpu: dict[str, float], seconds: float) -> float:
    """How much of the machine's cores were busy over a run of `seconds`, in percent."""
    return 100 * cpu[MACHINE] / (seconds * (os.cpu_count() or 1))
