"""What this machine lets the sandbox do (:class:`Platform`), probed once per process, and the one-line summary of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from . import cgroups
from .jail import Jail
from .mounts import _course_paths
from .policy import GradingSandbox

_MODE_ENV = "GUTCOURSE_SANDBOX_MODE"


@dataclass(frozen=True)
class Platform:
    """What this machine lets the sandbox do: ``namespaces``, ``bwrap``, ``limits`` or ``off``."""

    mode: str
    why: str = ""  # why a stronger mode is not available


def _probe(mode: str, policy: GradingSandbox, config) -> str:
    """Start a throwaway sandbox of ``mode``; returns "" if a kernel could run in it, else why not."""
    hide, needed = _course_paths(config)
    with tempfile.TemporaryDirectory(prefix="gutcourse-probe-") as tmp:
        jail = Jail(policy, Platform(mode), tmp, hide=hide, needed=needed)
        try:
            jail.prepare()
            cmd = jail.wrap([sys.executable, "-c", "import ipykernel, gutcourse.checks"])
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp,
                                  env=dict(os.environ, **jail.env()))
        except (OSError, subprocess.SubprocessError) as err:
            return f"{type(err).__name__}: {err}"
        finally:
            jail.release()
    if done.returncode == 0:
        return ""
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


_detected: dict[tuple, Platform] = {}


def detect(config) -> Platform:
    """The sandbox mode for this process (probed once, or inherited from the grading run)."""
    policy = GradingSandbox(config=config)
    inherited = os.environ.get(_MODE_ENV)
    if inherited:
        mode, _, why = inherited.partition(":")
        return Platform(mode, why)
    key = (policy.enabled, policy.isolate_files, policy.use_bubblewrap, os.geteuid() if hasattr(os, "geteuid") else 0)
    if key not in _detected:
        _detected[key] = _detect(policy, config)
    return _detected[key]


def _detect(policy: GradingSandbox, config) -> Platform:
    if not policy.enabled:
        return Platform("off", "switched off in nbgrader_config.py (GradingSandbox.enabled)")
    if os.name != "posix":
        return Platform("off", f"no sandbox on {sys.platform}")
    if not sys.platform.startswith("linux"):
        return Platform("limits", f"{sys.platform} has no Linux namespaces")
    if not policy.isolate_files:
        return Platform("limits", "isolation switched off (GradingSandbox.isolate_files)")
    reasons = []
    if os.geteuid() == 0:
        why = _probe("namespaces", policy, config)
        if not why:
            return Platform("namespaces")
        reasons.append(f"namespaces failed ({why})")
    else:
        reasons.append("not running as root")
    bwrap = shutil.which("bwrap")
    if policy.use_bubblewrap and bwrap:
        why = _probe("bwrap", policy, config)
        if not why:
            return Platform("bwrap", "; ".join(reasons))
        reasons.append(f"bubblewrap failed ({why})")
    elif policy.use_bubblewrap:
        reasons.append("bubblewrap is not installed")
    return Platform("limits", "; ".join(reasons))


def pin_mode(platform: Platform) -> None:
    """Use ``platform`` in this process (a grading worker) and its children without probing."""
    os.environ[_MODE_ENV] = f"{platform.mode}:{platform.why}"


def describe(config, platform: Platform | None = None) -> str:
    """One line saying which protections grading kernels get here."""
    policy = GradingSandbox(config=config)
    platform = platform or detect(config)
    timeout = getattr(getattr(config, "Execute", None), "timeout", None) or 30
    limits = (f"limits: memory {policy.memory_mb} MB, CPU {policy.cpu_seconds} s, files {policy.file_mb} MB, "
              f"{policy.processes} processes; timeouts {timeout} s per cell, "
              f"{policy.submission_timeout} s per notebook")
    if platform.mode == "off":
        return f"grading sandbox OFF ({platform.why}): student code runs with your rights; timeouts only"
    net = "network allowed" if policy.network else "no network"
    if platform.mode == "namespaces":
        return (f"grading sandbox: each kernel as its own user, {net}, course folder hidden, "
                f"only the submission's folder writable; {limits}; processes limited per kernel (its own user id); "
                f"{_start_note(policy, platform)}")
    if platform.mode == "bwrap":
        return (f"grading sandbox (bubblewrap): {net}, course folder hidden, only the submission's "
                f"folder writable, kernels keep your user id; {limits}; {_shared_uid_note(policy)}; "
                f"{_start_note(policy, platform)}")
    missing = "network and filesystem NOT isolated" + (f" ({platform.why})" if platform.why else "")
    return (f"grading sandbox: resource limits only, {missing}; {limits}; {_shared_uid_note(policy)}; "
            f"{_start_note(policy, platform)}")


def _shared_uid_note(policy: GradingSandbox) -> str:
    """Which limits are each kernel's own when kernels share the grader's user id."""
    if not policy.cgroups:
        return cgroups.describe(None, "switched off, GradingSandbox.cgroups")
    return cgroups.describe(*cgroups.setup())


def _start_note(policy: GradingSandbox, platform: Platform) -> str:
    """How kernels start: forked from a preloaded template, or as new interpreters (and why)."""
    why = _fork_unavailable(policy, platform)
    if why:
        return f"kernels start as new interpreters ({why})"
    return "kernels forked from a per-worker template with the course's libraries preloaded"


def _fork_unavailable(policy: GradingSandbox, platform: Platform) -> str:
    """Why kernels cannot be forked from a template here ("" when they can)."""
    if not policy.fork_server:
        return "fork server switched off (GradingSandbox.fork_server)"
    if not sys.platform.startswith("linux"):
        return f"no fork server on {sys.platform}"
    if platform.mode != "namespaces":
        return f"no fork server in {platform.mode} mode: it needs the namespaces sandbox (root)"
    return ""
