"""What grading kernels may do: the :class:`GradingSandbox` settings, and how long a kernel gets to stop.

The traits of :class:`GradingSandbox` are set in ``nbgrader_config.py``
(``c.GradingSandbox.memory_mb = 2048``); :func:`_load_factor` stretches
``interrupt_grace`` while the machine is busier than it has cores.
"""

from __future__ import annotations

import os

from traitlets import Bool, Float, Integer, List, Unicode
from traitlets.config import Configurable


class GradingSandbox(Configurable):
    """Limits and isolation for grading kernels (settings in ``nbgrader_config.py``)."""

    enabled = Bool(True, help="Run grading kernels in the sandbox at all.").tag(config=True)
    memory_mb = Integer(2048, help="Address space of each kernel process, in MB.").tag(config=True)
    cpu_seconds = Integer(600, help="CPU time of each kernel process, in seconds.").tag(config=True)
    file_mb = Integer(200, help="Largest file a kernel may write, in MB.").tag(config=True)
    processes = Integer(128, help="Processes and threads a kernel may run at once.").tag(config=True)
    tmp_mb = Integer(256, help="Size of the kernel's private /tmp, in MB.").tag(config=True)
    interrupt_grace = Float(
        5.0, help="Seconds a timed-out cell gets to stop after the interrupt before its kernel is killed "
                  "(stretched, up to four times, while the machine is busier than it has cores)."
    ).tag(config=True)
    submission_timeout = Integer(
        900, help="Seconds one notebook may run in total; later cells are not run."
    ).tag(config=True)
    max_output_mb = Float(
        5.0, help="Output kept from one notebook, in MB; the rest is dropped while it runs."
    ).tag(config=True)
    network = Bool(False, help="Allow kernels to use the network.").tag(config=True)
    isolate_files = Bool(
        True, help="Hide the course folder and make everything but the submission read-only."
    ).tag(config=True)
    use_bubblewrap = Bool(True, help="Use bubblewrap (bwrap) when not running as root.").tag(config=True)
    cgroups = Bool(
        True, help="Where kernels share the grader's user id (bubblewrap, limits only), give each a cgroup v2 "
                   "with its own memory and process limits, if the system delegates one to the grader."
    ).tag(config=True)
    hide_paths = List(
        Unicode(), ["/srv/nbgrader/exchange", "/usr/local/share/nbgrader"],
        help="More folders the kernel must not see (besides the course folder and the gradebook's).",
    ).tag(config=True)
    uid_base = Integer(
        1_000_000_000, help="As root, kernels run as user ids from here up (no account needed)."
    ).tag(config=True)
    fork_server = Bool(
        True, help="Fork kernels from a per-worker template that has imported the course's libraries "
                   "(Linux, as root); off, or elsewhere, every kernel starts a new interpreter."
    ).tag(config=True)
    referee = List(
        Unicode(), ["ps0_orientation", "ps1_permeability", "ps2_alpha_diversity", "ps3_beta_diversity",
                    "ps4_mecfs_case_study", "ps5_mucosal_immunity"],
        help="Assignments whose test cells are judged outside the student's kernel, in the grader's "
             "process (gutcourse.grading.referee); '*' for all. Others run their tests in the kernel.",
    ).tag(config=True)


def _load_factor() -> float:
    """How many times busier than its cores the machine has been over the last minute (1 to 4)."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average on this system
        return 1.0
    return min(4.0, max(1.0, load))
