"""The default thread count reads cgroup CPU quotas (v1 and v2) from fake cgroup trees, and the affinity mask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codelstm.cpu import available_cpus, cgroup_cpu_limit


def fake_cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup mount under tmp_path with `files` (path -> content) and a /proc/self/cgroup saying `proc`."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc_file = tmp_path / "proc_self_cgroup"
    proc_file.write_text(proc)
    return root, proc_file


def affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_v2_quota_at_the_root_is_quota_over_period(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(root, proc) == 1.5


def test_v2_max_means_no_limit(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(root, proc) == affinity()


def test_v2_tightest_limit_along_the_path_wins(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/kubepods/pod1/ctr\n", {
        "kubepods/cpu.max": "400000 100000",
        "kubepods/pod1/cpu.max": "200000 100000",
        "kubepods/pod1/ctr/cpu.max": "max 100000",
    })
    assert cgroup_cpu_limit(root, proc) == 2.0


def test_v2_host_path_missing_in_the_container_reads_the_mount_root(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/docker/0123abcd\n", {"cpu.max": "100000 100000"})
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_v1_cfs_quota_over_period(tmp_path):
    root, proc = fake_cgroup(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_limit(root, proc) == 2.5


def test_v1_quota_minus_one_means_no_limit(tmp_path):
    root, proc = fake_cgroup(tmp_path, "2:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert cgroup_cpu_limit(root, proc) is None


def test_unreadable_or_garbled_files_mean_no_limit(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "garbage"})
    assert cgroup_cpu_limit(root, proc) is None
    assert cgroup_cpu_limit(root, tmp_path / "no_such_file") is None


@pytest.mark.skipif(affinity() < 2, reason="needs an affinity mask of 2 CPUs or more to see the quota bind")
def test_available_cpus_is_the_quota_rounded_down_when_below_the_affinity(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "199000 100000"})
    assert available_cpus(root, proc) == 1


def test_a_quota_under_one_cpu_still_gives_one(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "50000 100000"})
    assert available_cpus(root, proc) == 1


def test_a_quota_above_the_affinity_mask_leaves_the_mask(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": f"{(affinity() + 8) * 100000} 100000"})
    assert available_cpus(root, proc) == affinity()
