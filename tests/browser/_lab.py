"""A JupyterLab server of the test's own, and what a browser does with it.

The server runs on 127.0.0.1 on a free port with a random token, its Jupyter dirs
inside a temp folder; ``stop`` ends the server and then any of the processes it
started (kernels) that outlived it, each by its pid.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# Waits are generous: the machines that run this suite are often busy with other jobs.
START_TIMEOUT_S = 180
UI_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 240_000

# JupyterLab settings that keep the screen free of prompts about fetching news from the web.
QUIET_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}

STDERR_OUTPUT = "[data-mime-type='application/vnd.jupyter.stderr']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: where it listens, its token, its log, its process."""

    base_url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen
    # Every process the server started, by pid; psutil's handle refuses to signal a reused pid.
    children: dict = field(default_factory=dict)
    # The server's runtime folder, removed when it stops.
    runtime_dir: Path | None = None

    def url(self, path: str = "lab", **query) -> str:
        """A URL on the server that carries the token (``reset`` opens a fresh Lab layout)."""
        params = {"token": self.token, **query}
        qs = "&".join(k if v is True else f"{k}={v}" for k, v in params.items())
        return f"{self.base_url}/{path.lstrip('/')}?{qs}"

    def notebook_url(self, relpath: str | Path) -> str:
        return self.url(f"lab/tree/{Path(relpath).as_posix()}", reset=True)

    def api(self, path: str, method: str = "GET") -> tuple[int, object]:
        """Call the server's REST API with the token; returns (status, decoded JSON or text)."""
        request = urllib.request.Request(f"{self.base_url}/{path.lstrip('/')}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode("utf-8", "replace")
        try:
            return status, json.loads(body) if body else None
        except json.JSONDecodeError:
            return status, body

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server, so a finished test leaves none running."""
        self._remember_children()
        status, kernels = self.api("api/kernels")
        if status != 200:
            return
        for kernel in kernels:
            self.api(f"api/kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _remember_children(self) -> None:
        import psutil

        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def stop(self) -> None:
        """SIGTERM the server (it shuts its kernels down), then end any child it left behind."""
        import psutil

        self._remember_children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        leftovers = []
        for proc in self.children.values():
            try:
                proc.terminate()
                leftovers.append(proc)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for proc in alive:
            proc.kill()
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def start_lab(*, cwd: Path, root_dir: Path, config_dir: Path, home: Path) -> Lab:
    """Start JupyterLab with Jupyter's config in ``config_dir`` and everything else under ``home``.

    ``cwd`` matters: nbgrader's Validate and formgrader read ``nbgrader_config.py`` from it.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    dirs = {"JUPYTER_DATA_DIR": "data", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}
    for var, sub in dirs.items():
        env[var] = str(home / sub)
    env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    env["MPLBACKEND"] = "Agg"
    settings = home / "user-settings"
    for name, values in QUIET_USER_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values), encoding="utf-8")
    last_error = ""
    for attempt in range(3):
        port, token = free_port(), secrets.token_hex(16)
        # Kernels' Unix sockets live in the runtime folder, and a socket's path may not pass 107 bytes.
        runtime = Path(tempfile.mkdtemp(prefix="lab-", dir="/tmp" if os.path.isdir("/tmp") else None))
        env["JUPYTER_RUNTIME_DIR"] = str(runtime)
        log_path = home / f"jupyterlab-{attempt}.log"
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # Kernels talk over Unix sockets: with TCP, a port the server picked for a kernel can be
            # taken by another process before the kernel binds it, and the queued cells never run.
            "--KernelManager.transport=ipc",
            # Lets a test ask the page which commands exist; changes nothing a user sees.
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        lab = Lab(f"http://127.0.0.1:{port}", token, root_dir, log_path, process, runtime_dir=runtime)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if lab.api("api/status")[0] == 200:
                    return lab
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        last_error = lab.log_tail()
        lab.stop()
        if "already in use" not in last_error:
            break
    raise RuntimeError(f"JupyterLab did not start:\n{last_error}")


# ---- screenshots -----------------------------------------------------------------------------

def blank_reason(png: Path, *, min_std: float = 10.0, min_busy_share: float = 0.02) -> str | None:
    """Why the screenshot looks blank (None when it does not).

    Blank means one colour nearly everywhere: a page that never drew. A drawn
    JupyterLab has text, toolbars and figures, so its grey levels vary and a
    good share of pixels differ from the background.
    """
    from PIL import Image

    with Image.open(png) as image:
        grey = np.asarray(image.convert("L"), dtype=float)
    if grey.size == 0:
        return "the image is empty"
    std = float(grey.std())
    values, counts = np.unique(grey, return_counts=True)
    busy = 1.0 - counts.max() / grey.size
    if std < min_std:
        return f"grey levels barely vary (std {std:.1f} < {min_std})"
    if busy < min_busy_share:
        return f"only {busy:.1%} of pixels differ from the background colour {values[counts.argmax()]:.0f}"
    return None


def shoot(target, path: Path) -> Path:
    """Save a screenshot of a page or an element and fail if it is blank."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(path))
    reason = blank_reason(path)
    assert reason is None, f"screenshot {path} looks blank: {reason}"
    return path


# ---- driving JupyterLab ----------------------------------------------------------------------
#
# A step in the browser can be lost: JupyterLab keeps working after `app.restored` (it loads its
# state, follows the URL's route, opens a Launcher) and each of those commands can undo what a test
# just did. The modal command palette hides itself, and empties its list, whenever any command runs;
# a Launcher opened late takes the current widget from a notebook, which disables the notebook's
# commands. So every step below checks that it took effect, and does it again when it did not,
# instead of waiting for a state that a lost step can never reach.

RETRY_POLL_MS = 200


def _until(page, attempt, what: str, timeout_ms: int = UI_TIMEOUT_MS, poll_ms: int = RETRY_POLL_MS):
    """Call ``attempt()`` until it returns something other than None; fail naming ``what``."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_ms / 1000:.0f} s: {what}")
        page.wait_for_timeout(poll_ms)


def wait_restored(page) -> None:
    """Wait until the page's JupyterLab exists and has restored its layout."""
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=UI_TIMEOUT_MS)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")


_CURRENT_NOTEBOOK = """path => {
  const w = window.jupyterapp.shell.currentWidget;
  return !!(w && w.content && w.content.widgets && w.context && w.context.path === path);
}"""


def activate_notebook(page, path: str) -> None:
    """Make the notebook at ``path`` the current widget (a late Launcher can take that place)."""
    def attempt():
        if page.evaluate(_CURRENT_NOTEBOOK, path):
            return True
        page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", path)
        return None

    _until(page, attempt, f"notebook {path} never became the current widget")


# Lab attaches a notebook's cells to the page in batches, after its first cell appears.
_ALL_CELLS_SHOWN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!(w && w.content && w.content.model)) return false;
  return w.content.node.querySelectorAll('.jp-Cell').length === w.content.model.cells.length;
}"""


def open_notebook(page, lab: Lab, relpath: str | Path) -> None:
    """Open a notebook in a fresh Lab layout, make it current and wait until every cell is on
    the page and its kernel is idle."""
    path = Path(relpath).as_posix()
    page.goto(lab.notebook_url(relpath))
    wait_restored(page)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=UI_TIMEOUT_MS)
    activate_notebook(page, path)
    page.wait_for_function(_ALL_CELLS_SHOWN, timeout=UI_TIMEOUT_MS)
    wait_kernel_idle(page)
    page.evaluate("p => { window.__gutcourseNotebook = p; }", path)


def wait_kernel_idle(page) -> None:
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle")).wait_for(timeout=UI_TIMEOUT_MS)


def _open_menu_items(page):
    return page.locator(".lm-Menu .lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel")


def _open_menu(page, top: str) -> None:
    """Open a main-menu menu; click its title again if the menu did not open."""
    title = page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(f"^{re.escape(top)}$"))

    def attempt():
        if _open_menu_items(page).count():
            return True
        title.click()
        return None

    _until(page, attempt, f"the {top} menu did not open")


def menu(page, top: str, item: str) -> None:
    """Click a main-menu item, e.g. ``menu(page, "Run", "Run All Cells")``."""
    _open_menu(page, top)
    _open_menu_items(page).filter(has_text=re.compile(f"^{re.escape(item)}$")).first.click()


def menu_bar_labels(page) -> list[str]:
    page.locator("#jp-MainMenu .lm-MenuBar-item").first.wait_for(timeout=UI_TIMEOUT_MS)
    return [t.strip() for t in page.locator("#jp-MainMenu .lm-MenuBar-itemLabel").all_inner_texts()]


def visible_menu_items(page, top: str) -> list[str]:
    """Labels of the visible items of a main-menu menu (closed again afterwards)."""
    _open_menu(page, top)
    labels = [t.strip() for t in _open_menu_items(page).all_inner_texts()]
    page.keyboard.press("Escape")
    return labels


def has_command(page, command_id: str) -> bool:
    return page.evaluate("id => window.jupyterapp.commands.hasCommand(id)", command_id)


_PALETTE_READ = """([sel, known]) => {
  const modal = document.getElementById('modal-command-palette');
  if (!modal || modal.classList.contains('lm-mod-hidden')) {
    window.jupyterapp.commands.execute('apputils:activate-command-palette');
    return {reopened: true, labels: null};
  }
  const labels = [...document.querySelectorAll(sel)].map(e => e.textContent.trim());
  return {reopened: false, labels: labels.includes(known) ? labels : null};
}"""


def palette_labels(page, known: str) -> list[str]:
    """Every entry the command palette lists (palette closed again afterwards).

    The palette is opened by its command, not by Ctrl+Shift+C (the shortcut toggles), with an
    empty search so it lists everything it has. Any command that runs while it is open (Lab
    runs several just after restoring) hides it and empties its list, so it is opened again
    until a full list has been read. ``known`` must be among the entries: it shows the list
    is complete and that an entry missing from it is really absent, not just not drawn yet.
    """
    wait_restored(page)
    item = ".lm-CommandPalette-item .lm-CommandPalette-itemLabel"
    opened = []

    def attempt():
        state = page.evaluate(_PALETTE_READ, [item, known])
        opened.append(state["reopened"])
        return state["labels"]

    labels = _until(page, attempt, f"the command palette never listed {known!r} "
                                   f"(opened {sum(opened)} times)")
    page.evaluate("""() => { const m = document.getElementById('modal-command-palette');
        if (m && !m.classList.contains('lm-mod-hidden')) {
          m.querySelector('.lm-CommandPalette-input').dispatchEvent(
            new KeyboardEvent('keydown', {key: 'Escape', keyCode: 27, bubbles: true}));
        } }""")
    return labels


_PROMPTS = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
# Done: something ran and nothing is queued or running ("[*]:"); a cell that fails stops the rest.
_RUN_FINISHED = f"""() => {{
  const prompts = {_PROMPTS};
  return prompts.some(t => /^\\[\\d+\\]:$/.test(t)) && !prompts.includes('[*]:');
}}"""


def _counts(prompts: list[str]) -> set[str]:
    return {t for t in prompts if re.fullmatch(r"\[\d+\]:", t)}


def run_all(page) -> None:
    """Run every cell from the Run menu and wait until the kernel has finished.

    The menu item is clicked only while the notebook is current (otherwise it is disabled
    and the click does nothing), and clicked again if no cell was queued by it.
    """
    path = page.evaluate("() => window.__gutcourseNotebook")
    before = _counts(page.evaluate(f"() => {_PROMPTS}"))

    def attempt():
        # Queued: a cell waits or runs, or a cell has a count it did not have before. Comparing
        # the whole list of prompts is not enough: it also changes while Lab is still adding
        # cells to the page, and that once let CI wait 240 s for a Run All never clicked.
        prompts = page.evaluate(f"() => {_PROMPTS}")
        if "[*]:" in prompts or _counts(prompts) - before:
            return True
        if path:
            activate_notebook(page, path)
        if page.evaluate("() => window.jupyterapp.commands.isEnabled('notebook:run-all-cells')"):
            menu(page, "Run", "Run All Cells")
            page.wait_for_timeout(1000)
        return None

    _until(page, attempt, "Run All Cells queued no cell")
    try:
        page.wait_for_function(_RUN_FINISHED, timeout=RUN_TIMEOUT_MS)
    except PlaywrightTimeoutError:
        prompts = page.evaluate(f"() => {_PROMPTS}")
        status = page.locator("#jp-main-statusbar").inner_text(timeout=5_000)
        raise AssertionError(f"Run All did not finish in {RUN_TIMEOUT_MS // 1000} s; "
                             f"prompts {prompts}; status bar {status!r}") from None
    wait_kernel_idle(page)


def unrun_cells(page) -> list[int]:
    """Positions (1-based, among code cells) of code cells without an execution count."""
    prompts = page.evaluate(f"() => {_PROMPTS}")
    return [i + 1 for i, t in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", t)]


def error_outputs(page) -> list[str]:
    """Text of every error or stderr output shown in the notebook."""
    return page.locator(f".jp-Notebook {STDERR_OUTPUT}").all_inner_texts()


def scroll_into_view(page, locator, attempts: int = 20) -> None:
    """Scroll the notebook until ``locator`` sits inside the window.

    JupyterLab renders off-screen cells lazily, so cells above the target change
    height while it scrolls and the target drifts; scroll again until it stays put.
    """
    height = page.viewport_size["height"]
    for _ in range(attempts):
        locator.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        box = locator.bounding_box()
        if box and 40 < box["y"] < height - 40 and (box["y"] + box["height"] < height or box["height"] > height / 2):
            return
    raise AssertionError(f"could not scroll {locator} into view")


_CELL_SOURCE = """i => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.getSource()"""


def set_cell_source(page, index: int, source: str) -> None:
    """Replace the text of the notebook's ``index``-th cell as a student would, through its editor.

    The text is read back from the notebook's model; a lost click or keystroke is typed again.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)

    def attempt():
        scroll_into_view(page, cell.locator(".jp-Cell-inputWrapper"))
        editor = cell.locator(".cm-content")
        if "jp-MarkdownCell" in (cell.get_attribute("class") or "") and not editor.is_visible():
            cell.locator(".jp-MarkdownOutput").dblclick()
            return None
        editor.click()
        page.keyboard.press("Control+A")
        # insert_text types the text in one go, so the editor's auto-indent does not re-indent it.
        page.keyboard.insert_text(source)
        page.keyboard.press("Escape")
        return True if page.evaluate(_CELL_SOURCE, index) == source else None

    _until(page, attempt, f"cell {index} does not hold the text typed into it")


def explorer_outputs(page):
    """Output areas that hold an ipywidgets explorer with at least one slider."""
    return page.locator(".jp-Notebook .jp-OutputArea-output").filter(has=page.locator(".widget-slider"))


_SNAPSHOT = """e => e.innerText + '\\n' + [...e.querySelectorAll('img')].map(i => i.src).join('\\n')"""


def explorer_snapshot(output) -> str:
    """What a learner sees of an explorer: its text (readouts) and its figures' image data."""
    return output.evaluate(_SNAPSHOT)


def drag_first_slider(page, output) -> tuple[str, str]:
    """Drag the explorer's first slider well away from where it is; returns its readout before and after.

    The handle is measured just before each drag; a drag that moved nothing (the notebook
    shifted under the mouse) is done again.
    """
    slider = output.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout")
    scroll_into_view(page, handle)
    before = readout.inner_text()

    def attempt():
        scroll_into_view(page, handle)
        hb, tb = handle.bounding_box(), slider.locator(".noUi-target").bounding_box()
        x0, y0 = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        share = 0.8 if x0 < tb["x"] + tb["width"] / 2 else 0.2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(tb["x"] + tb["width"] * share, y0, steps=12)
        page.mouse.up()
        after = readout.inner_text()
        return after if after != before else None

    return before, _until(page, attempt, f"dragging the slider never moved it from {before}")


def wait_until_changed(page, output, before: str, timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    """Wait until the explorer shows something other than ``before`` and has stopped changing.

    A readout and a figure arrive in separate messages from the kernel; the
    explorer has settled once its snapshot stays the same for 0.6 s.
    Returns that snapshot.
    """
    page.wait_for_function(f"([e, before]) => ({_SNAPSHOT})(e) !== before",
                           arg=[output.element_handle(), before], timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    current = explorer_snapshot(output)
    while time.monotonic() < deadline:
        page.wait_for_timeout(600)
        latest = explorer_snapshot(output)
        if latest == current:
            break
        current = latest
    return current
