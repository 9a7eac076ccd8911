"""Grading kernels that a student's code cannot escape, hang or flood.

nbgrader runs every submission in an ordinary kernel with the grader's rights.
Here each kernel is started through :mod:`gutcourse.grading._sandbox_exec`
with resource limits and, where the operating system allows it, without
network and with a filesystem view in which only the submission's own folder
is writable and the course folder (gradebook, other students, solutions) is
hidden. ``docs/security.md`` explains what this does and does not protect.

``nbgrader_config.py`` puts :class:`GuardedExecute` in place of nbgrader's
``Execute``, so ``gutcourse grade``, ``gutcourse check``, the tests of the
tests and nbgrader's own ``autograde`` all grade this way. Settings are the
traits of :class:`GradingSandbox` (``c.GradingSandbox.memory_mb = 2048``) and
nbgrader's ``c.Execute.timeout`` (seconds per cell).

:class:`GuardedExecute` also makes a stuck or dead kernel cheap: a cell that
times out and whose kernel does not react to the interrupt within
``interrupt_grace`` seconds, or a kernel that exits, stops the notebook there.
The remaining cells are marked as not run (their tests earn nothing, unlike
jupyter/nbgrader#427), the points earned before are kept, and what happened is
reported through :mod:`gutcourse.grading.incidents` for the grader to show.

The package's modules, each importing (at run time) only those listed before it:

- ``policy``: the :class:`GradingSandbox` settings and the load factor that stretches the interrupt grace;
- ``mounts``: which folders a kernel must not see, which it needs, and the mount plan of its view;
- ``jail``: one kernel's :class:`Jail` (user id, runtime folders, environment, launch command), ``kill_user``
  and ``sanitize_folder``;
- ``platform``: which sandbox mode this machine allows (:class:`Platform`, ``detect``, ``describe``);
- ``forktemplate``: the per-worker :class:`ForkTemplate` that kernels are forked from, and its preloads;
- ``kernels``: the kernel managers and client (:class:`SandboxKernelManager` and the prompt ones);
- ``execute``: guarded execution, :class:`GuardedExecute`.

The scripts run by path, ``_sandbox_exec.py``, ``_forkserver.py`` and
``_forkclient.py``, stay in ``gutcourse/grading/``. Every name that other
modules, tests or ``nbgrader_config.py`` use is importable from here
(``gutcourse.grading.sandbox.GuardedExecute``).
"""

from __future__ import annotations

from .._lazy import exports

#: Each name and the module (in this package) that defines it; imported when first used (PEP 562),
#: so that the kernel template can start before ``execute`` and ``kernels`` import nbgrader and
#: jupyter_client.
_EXPORTS = {
    "GuardedExecute": "execute",
    **dict.fromkeys(("FORK_CLIENT", "FORK_SERVER", "ForkTemplate", "_stop_template", "kernel_preloads",
                     "preload_setup_libraries", "warm_up", "warm_up_workers"),
                    "forktemplate"),
    **dict.fromkeys(("LAUNCHER", "Jail", "_processes_of", "kill_user", "sanitize_folder"), "jail"),
    **dict.fromkeys(("PromptKernelClient", "PromptKernelManager", "SandboxKernelManager", "kill_running_kernels"),
                    "kernels"),
    **dict.fromkeys(("_course_paths", "_opaque_ancestor", "mount_plan"), "mounts"),
    **dict.fromkeys(("Platform", "_fork_unavailable", "describe", "detect", "pin_mode"), "platform"),
    "GradingSandbox": "policy",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = exports(__name__, _EXPORTS)
