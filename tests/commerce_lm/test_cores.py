"""Thread pools are sized by the cores a pod may use: its affinity, capped by its cgroup CPU quota."""

import os

from commerce_lm import cores


def test_a_cgroup_quota_caps_the_cores(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")  # a limit of one core
    assert cores.usable(cpu_max) == 1
    cpu_max.write_text("150000 100000\n")  # 1.5 cores: both threads get work
    assert cores.usable(cpu_max) == min(2, affinity)
    cpu_max.write_text(f"{(affinity + 8) * 100000} 100000\n")  # a quota above the node: the affinity
    assert cores.usable(cpu_max) == affinity


def test_no_quota_means_the_affinity(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert cores.usable(cpu_max) == affinity
    assert cores.usable(tmp_path / "absent") == affinity
