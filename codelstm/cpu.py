"""How many CPUs this process may really use: its affinity mask and its cgroup's CPU quota, not the machine's cores.

In a container limited to 2 CPUs on a 64-core host, os.cpu_count() says 64; starting 63 torch threads there
makes every step fight for 2 CPUs' worth of time (the kernel throttles the group), which is far slower than
2 threads. Both cgroup versions are read: v2's `cpu.max` ("QUOTA PERIOD" or "max PERIOD") and v1's
`cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1: no limit). A limit set on any ancestor of the process's
cgroup applies too, so the tightest one along the path wins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process can keep busy: the fewer of its affinity mask and its cgroup quota (rounded down,
    at least 1: running more threads than the quota only buys throttling)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota + 1e-9)))
    return max(1, cpus)


def cgroup_cpu_limit(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period; the tightest along its path, v1 or v2),
    or None when there is none or it cannot be read."""
    try:
        memberships = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2: "0::/path"
            limits += (q for d in _dirs(cgroup_root, path) if (q := _v2_quota(d / "cpu.max")) is not None)
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            for mount in dict.fromkeys((controllers, "cpu,cpuacct", "cpu")):
                if (cgroup_root / mount).is_dir():
                    limits += (q for d in _dirs(cgroup_root / mount, path) if (q := _v1_quota(d)) is not None)
                    break
    return min(limits) if limits else None


def _dirs(base: Path, path: str) -> Iterator[Path]:
    """The process's cgroup folder under a mount and its ancestors up to the mount. Inside a container the
    path /proc names is often the host's (/docker/<id>) while the mount shows the container's own group at
    its root: then only the root is read."""
    here = base / path.strip("/")
    if not here.is_dir() or not here.resolve().is_relative_to(base.resolve()):
        here = base
    while here != base:
        yield here
        here = here.parent
    yield base


def _v2_quota(file: Path) -> float | None:
    try:
        quota, period = file.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def default_threads(reserve: int = 0) -> int:
    """Torch threads when none are configured: the CPUs available, less `reserve` (at least 1)."""
    return max(1, available_cpus() - reserve)
