"""Per-kernel cgroups where kernels share the grader's user id, on a cgroup tree made of plain files.

This machine's cgroup v2 has no controllers, so the real hierarchy cannot be used here:
the tests build the files the kernel would show and check what is written into them.
"""

import os
import sys
from pathlib import Path

import pytest

from gutcourse.grading import _sandbox_exec, load_config
from gutcourse.grading.sandbox import GradingSandbox, Jail, Platform, cgroups, describe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux's")


def _tree(root: Path, own: str = "grader.service", offered: str = "cpu memory pids", procs=("11", "12")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    base = root / own
    base.mkdir()
    (base / "cgroup.controllers").write_text(offered + "\n")
    (base / "cgroup.subtree_control").write_text("\n")
    (base / "cgroup.procs").write_text("\n".join(procs) + "\n")
    return base


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    monkeypatch.setattr(cgroups, "ROOT", root)
    monkeypatch.setattr(cgroups, "_state", {})
    monkeypatch.setattr(cgroups, "_self_cgroup", lambda: "/grader.service")
    return root


def test_a_delegated_cgroup_moves_the_grader_into_a_leaf_and_hands_memory_and_pids_to_kernels(fake):
    base = _tree(fake)
    found, why = cgroups.setup(fake)
    assert (found, why) == (base, "")
    assert (base / cgroups.GRADER_LEAF).is_dir()
    # Plain files keep the last write; the real file takes one pid per write.
    assert (base / cgroups.GRADER_LEAF / "cgroup.procs").read_text() == "12"
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert cgroups.setup(fake) == (base, "")  # once per process


def test_a_kernel_gets_its_own_limits_and_its_cgroup_is_removed_after(fake):
    base = _tree(fake)
    kernel = cgroups.create(base, 2048 << 20, 128)
    assert kernel.parent == base and kernel.name.startswith(cgroups.KERNEL_PREFIX)
    assert (kernel / "pids.max").read_text() == "128"
    assert (kernel / "memory.max").read_text() == str(2048 << 20)
    assert (kernel / "memory.swap.max").read_text() == "0"
    for name in ("pids.max", "memory.max", "memory.swap.max"):
        (kernel / name).unlink()  # the real interface files go with the folder
    cgroups.remove(kernel, wait=0.1)
    assert not kernel.exists()


@pytest.mark.parametrize("case, why", [
    ("no v2", "no cgroup v2 hierarchy"),
    ("no pids", "does not offer the pids controller"),
    ("no memory, no pids", "does not offer the memory and pids controller"),
    ("not delegated", "not delegated to the grader"),
])
def test_without_a_usable_cgroup_the_reason_is_given(fake, monkeypatch, case, why):
    if case == "no v2":
        fake.mkdir()
    elif case == "no pids":
        _tree(fake, offered="cpu memory")
    elif case == "no memory, no pids":
        _tree(fake, offered="cpu io")
    else:
        _tree(fake)
        real = os.access
        monkeypatch.setattr(cgroups.os, "access", lambda p, m: False if "subtree_control" in str(p) else real(p, m))
    base, reason = cgroups.setup(fake)
    assert base is None and why in reason


def test_a_grader_already_in_its_leaf_uses_the_cgroup_above(fake, monkeypatch):
    base = _tree(fake)
    (base / cgroups.GRADER_LEAF).mkdir()
    (base / "cgroup.subtree_control").write_text("memory pids\n")
    monkeypatch.setattr(cgroups, "_self_cgroup", lambda: f"/grader.service/{cgroups.GRADER_LEAF}")
    assert cgroups.setup(fake) == (base, "")


def _limits_jail(tmp_path, policy):
    work = tmp_path / "work"
    work.mkdir()
    return Jail(policy, Platform("limits"), work, hide=[], needed=[])


def test_a_limits_mode_kernel_is_launched_into_its_own_cgroup(fake, tmp_path, monkeypatch):
    base = _tree(fake)
    monkeypatch.setattr(cgroups, "setup", lambda root=None: (base, ""))
    jail = _limits_jail(tmp_path, GradingSandbox(memory_mb=512, processes=40))
    jail.prepare()
    try:
        spec = jail.spec()
        assert spec["cgroup"] and Path(spec["cgroup"]).parent == base
        assert (Path(spec["cgroup"]) / "pids.max").read_text() == "40"
        _sandbox_exec.join_cgroup(spec["cgroup"])
        assert (Path(spec["cgroup"]) / "cgroup.procs").read_text() == str(os.getpid())
    finally:
        for name in ("pids.max", "memory.max", "memory.swap.max", "cgroup.procs"):
            (Path(spec["cgroup"]) / name).unlink(missing_ok=True)  # the real ones go with the folder
        jail.release()
    assert jail.cgroup is None and not Path(spec["cgroup"]).exists()


def test_without_cgroups_the_kernel_has_none_and_the_summary_says_the_process_limit_is_shared(fake, tmp_path):
    fake.mkdir()  # no cgroup v2 here
    jail = _limits_jail(tmp_path, GradingSandbox())
    jail.prepare()
    try:
        assert jail.spec()["cgroup"] is None
    finally:
        jail.release()
    config = load_config()
    line = describe(config, Platform("limits"))
    assert "the process limit is shared by every kernel of this user" in line
    assert "no cgroup v2 hierarchy" in line
    assert "the process limit is shared" in describe(config, Platform("bwrap"))
    assert "processes limited per kernel (its own user id)" in describe(config, Platform("namespaces"))


def test_the_summary_says_when_limits_are_per_kernel(fake):
    _tree(fake)
    line = describe(load_config(), Platform("limits"))
    assert "memory and processes limited per kernel (cgroup v2)" in line


def test_a_launcher_that_cannot_join_its_cgroup_stops_with_a_clear_error(tmp_path):
    with pytest.raises(_sandbox_exec.SandboxError, match="could not join the kernel's cgroup"):
        _sandbox_exec.join_cgroup(str(tmp_path / "gone"))
    _sandbox_exec.join_cgroup(None)  # no cgroup: nothing to join
