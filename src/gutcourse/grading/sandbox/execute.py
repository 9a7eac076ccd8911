"""Guarded execution: nbgrader's ``Execute`` with a sandboxed kernel, an output budget and a time budget.

:class:`GuardedExecute` makes a stuck or dead kernel cheap: a cell that times
out and whose kernel does not react to the interrupt within ``interrupt_grace``
seconds, or a kernel that exits, stops the notebook there. The remaining cells
are marked as not run, the points earned before are kept, and what happened is
reported through :mod:`gutcourse.grading.incidents` for the grader to show.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute

from ..incidents import report as report_incident
from .kernels import PromptKernelManager, SandboxKernelManager
from .policy import GradingSandbox, _load_factor

_CELL_ALLOWANCE = 64 * 1024  # bytes of output every cell keeps, even after a flood elsewhere
_IOPUB_DRAIN = 30  # seconds a finished cell's output may take to arrive


def _where(cell, index: int) -> str:
    """A cell as the student knows it: its grade id, else its position."""
    gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
    return f"cell {gid}" if gid else f"cell {index + 1}"


def _exit_description(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code > 128 and code - 128 in signal.valid_signals():
        return f"was killed by {signal.Signals(code - 128).name}"
    return f"exited with code {code}"


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, an output budget and a kernel that cannot stall it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._referee = None
        self.policy = GradingSandbox(parent=self)
        if self.policy.enabled and os.name == "posix":
            self.kernel_manager_class = SandboxKernelManager
        elif self.kernel_manager_class is AsyncKernelManager:  # nbclient's default, not one configured
            self.kernel_manager_class = PromptKernelManager

    # -- timing ---------------------------------------------------------------------
    def _time_left(self) -> float:
        """Seconds the notebook has left; its clock starts with its first cell, once the kernel is up
        (a kernel slow to start on a busy machine must not eat the student's time)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.policy.submission_timeout
        return self._deadline - time.monotonic()

    def _cell_timeout(self, cell) -> int:
        remaining = max(1, int(self._time_left()) + 1)
        return min(self.timeout, remaining) if self.timeout and self.timeout > 0 else remaining

    def _grace(self) -> float:
        """Seconds the kernel gets to stop after an interrupt.

        A kernel that handles the interrupt still needs the CPU to say so: on a machine
        running more than it has cores, ``interrupt_grace`` is stretched by the load
        (at most four times), so a busy grading machine does not kill a kernel that was stopping.
        """
        self._grace_used = self.policy.interrupt_grace * _load_factor()
        return self._grace_used

    async def _async_handle_timeout(self, timeout, cell=None):
        self._interrupted = True
        # After the interrupt, the kernel has this long to say the cell ended.
        self.iopub_timeout = max(1, int(round(self._grace())))
        return await super()._async_handle_timeout(timeout, cell)

    # -- output budget -----------------------------------------------------------------
    def process_message(self, msg, cell, cell_index):
        msg_type = msg["msg_type"]
        content = msg["content"]
        if msg_type == "stream":
            size = len(content.get("text", ""))
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            size = sum(len(str(v)) for v in (content.get("data") or {}).values())
        elif msg_type.startswith("comm"):
            size = len(str(content.get("data")))
        elif msg_type == "error":
            content["evalue"] = str(content.get("evalue", ""))[:2000]
            content["traceback"] = [line[:2000] for line in content.get("traceback", [])[:200]]
            size = 0
        else:
            size = 0
        self._output_bytes += size
        cell_bytes = self._cell_bytes.get(cell_index, 0) + size
        self._cell_bytes[cell_index] = cell_bytes
        # A flood stops at the notebook's budget; later cells still keep a little output each.
        over = cell_bytes > self._output_budget or (
            self._output_bytes > self._output_budget and cell_bytes > _CELL_ALLOWANCE)
        if size and over and msg_type != "execute_result":
            if cell_index not in self._truncated_cells:
                self._truncated_cells.add(cell_index)
                cell.outputs.append(NotebookNode(
                    output_type="stream", name="stdout",
                    text=f"\n... output beyond {self.policy.max_output_mb:g} MB was dropped by the grader ...\n"))
            if msg_type == "stream" and content.get("name") == "stderr" and cell_index not in self._stderr_cells:
                # Output on stderr fails a test cell: dropping it must not turn a failure into a pass.
                self._stderr_cells.add(cell_index)
                cell.outputs.append(NotebookNode(output_type="stream", name="stderr",
                                                 text="... (stderr output dropped) ...\n"))
            return None
        return super().process_message(msg, cell, cell_index)

    # -- cells -----------------------------------------------------------------------
    def _mark_not_run(self, cell, ename: str, evalue: str) -> None:
        cell.outputs = list(cell.get("outputs", [])) + [NotebookNode(
            output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])]

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        runs = cell.cell_type == "code" and cell.source.strip()
        if self._stopped is not None:
            if runs:
                self._mark_not_run(cell, "NotRun", self._stopped)
            return cell
        if runs and self._time_left() <= 0:
            self._stop(f"not run: the notebook used up its {self.policy.submission_timeout} s", cell, cell_index)
            self._mark_not_run(cell, "NotRun", self._stopped)
            return cell
        role = self._referee.role(cell) if self._referee is not None else None
        if role == "test":
            return await self._judge(cell, cell_index)
        cell = await self._in_kernel(cell, cell_index, execution_count, store_history)
        if role == "setup" and self._stopped is None:
            self._referee.run_setup(cell.metadata.nbgrader.grade_id)
        return cell

    async def _judge(self, cell, cell_index):
        """A test cell judged by the referee, in this process, asking the kernel only for answers."""
        from ..referee import KernelLink, judge

        referee = self._referee
        end = time.monotonic() + self._cell_timeout(cell)
        if referee.link is None:
            try:
                referee.link = KernelLink(self.km, asyncio.get_running_loop(), lambda: end - time.monotonic())
            except Exception as err:  # no second connection to the kernel: no test can be judged
                self._mark_not_run(cell, "GraderError", f"the grader could not reach the kernel ({err})")
                self._stop("not run: the grader could not reach the kernel", cell, cell_index)
                return cell
        referee.link.deadline = lambda: end - time.monotonic()
        referee.grace = self._grace()
        cell.outputs = await judge(referee, cell.metadata.nbgrader.grade_id,
                                   self._cell_timeout(cell) + referee.grace + 30)
        cell.execution_count = None
        if referee.link.dead:
            await self._wait_exit()
            code = self._exit_code()
            if code is not None:
                what = f"the kernel {_exit_description(code)} while this test ran the student's code"
            else:
                what = (f"the student's code ran past this test's time limit and the kernel did not stop within "
                        f"{self._grace_used:.3g} s of the interrupt, so it was shut down")
            await self._kill_kernel()
            self._stop(f"not run: the kernel had stopped at {_where(cell, cell_index)}", cell, cell_index, what)
        return cell

    async def _in_kernel(self, cell, cell_index, execution_count, store_history):
        self._interrupted = False
        # A cell that finished may still be sending a long output: give it time to arrive.
        self.iopub_timeout = _IOPUB_DRAIN
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (CellTimeoutError, DeadKernelError) as err:
            if isinstance(err, DeadKernelError):
                await self._wait_exit()
                what = f"the kernel {_exit_description(self._exit_code())} while this cell ran"
                said = self.km._last_words() if hasattr(self.km, "_last_words") else ""
                if said:
                    what += f" ({said})"
            elif self._interrupted:
                what = (f"this cell ran past its time limit and the kernel did not stop within "
                        f"{self._grace_used:.3g} s of the interrupt, so it was shut down")
            else:
                what = f"the kernel stopped answering ({err.__class__.__name__}), so it was shut down"
            await self._kill_kernel()
            self._mark_not_run(cell, "KernelStopped", what)
            self._stop(f"not run: the kernel had stopped at {_where(cell, cell_index)}", cell, cell_index, what)
            return cell

    # nbclient binds the synchronous wrapper to its own coroutine; point it at ours.
    execute_cell = run_sync(async_execute_cell)

    def _stop(self, message: str, cell, cell_index: int, what: str | None = None) -> None:
        self._stopped = message
        report_incident(f"{_where(cell, cell_index)}: {what or message}; later cells not run")

    def _exit_code(self) -> int | None:
        return getattr(self.km, "exit_status", None) if self.km is not None else None

    async def _wait_exit(self) -> None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        for _ in range(50):
            if process is None or process.poll() is not None:
                return
            await asyncio.sleep(0.02)

    async def _kill_kernel(self) -> None:
        try:
            if self.km is not None and await self.km.is_alive():
                await self.km.shutdown_kernel(now=True)
        except Exception:  # the kernel is going away either way; nothing to report
            pass

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None
        self._interrupted = False
        self._grace_used = self.policy.interrupt_grace
        self._deadline = None  # set when the first cell runs
        self._output_bytes = 0
        self._output_budget = int(self.policy.max_output_mb * (1 << 20))
        self._truncated_cells: set[int] = set()
        self._cell_bytes: dict[int, int] = {}
        self._stderr_cells: set[int] = set()
        self.timeout_func = self._cell_timeout
        self._referee = None
        info = (resources or {}).get("nbgrader") or {}
        wanted = self.policy.referee
        if info.get("db_url") and info.get("notebook") and ("*" in wanted or info.get("assignment") in wanted):
            from ..referee import Referee, trusted_cells, trusted_order

            order = trusted_order(self.config, info["assignment"], info["notebook"])
            self._referee = Referee(trusted_cells(info["db_url"], info["assignment"], info["notebook"]), order)
            if order is None:
                report_incident("the instructor's notebook was not found in the course's source or release folder: "
                                "setup cells are judged in the submission's order")
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self._referee is not None:
                if self._referee.link is not None:
                    self._referee.link.close()
                for note in self._referee.setup_errors + self._referee.notes:
                    report_incident(note)
                self._referee.close()
                self._referee = None
        if self._truncated_cells:
            report_incident(f"output beyond {self.policy.max_output_mb:g} MB dropped "
                            f"(cells {', '.join(str(i + 1) for i in sorted(self._truncated_cells))})")
        return nb, resources
