"""The CPU cores this process may use: its CPU affinity, capped by its cgroup's CPU quota.

In a Kubernetes pod the affinity lists every core of the node, while the pod's CPU limit is a
cgroup quota; sizing thread pools by the affinity alone would start dozens of threads on a pod
allowed four.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable(cpu_max: Path = CPU_MAX) -> int:
    """Cores to size thread pools by (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()
        limit = math.ceil(int(quota) / int(period))
    except (OSError, ValueError):  # no cgroup v2 file, or "max": no quota
        return count
    return max(1, min(count, limit))
