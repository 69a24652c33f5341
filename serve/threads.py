"""How many threads a replica's model work gets: sized from the cores the replica may use, not from Ray's
reservation (`num_cpus` 0.4 is a scheduling share, and Ray sets OMP_NUM_THREADS=1 for it, so torch would run
every batch on one core of a machine whose other cores sit idle)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

#: cgroup v2 CPU limit ("<quota> <period>" or "max <period>"): a Kubernetes pod's CPU limit lands here.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by its cgroup's CPU quota when it has one."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 file (another OS, cgroup v1): the affinity alone
        pass
    return cores


def set_intra_op_threads(threads: int) -> None:
    """Threads one torch op may use, process-wide; only where the family imported torch (TensorFlow and TFLite
    families size their own sessions and interpreters from their options)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
