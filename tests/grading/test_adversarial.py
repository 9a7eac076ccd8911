"""Hostile and broken submissions graded in one class next to correct ones.

Every kind of bad submission from docs/security.md is handed in once, built
from the ps0_orientation release. The class is graded once (module fixture)
with small limits; each test then checks one case: the run finished, the bad
submission earned nothing for what it broke, its neighbours got their right
grades, and the gradebook and files outside are intact.
"""

import ast
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from gutcourse import cli
from gutcourse.grading import generate_feedback, incidents, load_config, read_result, release, sandbox
from gutcourse.grading._notebooks import fill_answers, grade_id, is_test
from gutcourse.grading.autograde import submit
from gutcourse.grading.backup import integrity_problems, list_backups, sqlite_path
from gutcourse.grading.classgrade import grade_class
from gutcourse.grading.repair import diagnose, tampering

from .conftest import REPO, make_course, run_cli

A = "ps0_orientation"
pytestmark = pytest.mark.xdist_group("adversarial")

# Small limits keep the slow cases (loops, a kernel that ignores interrupts) to seconds.
# 32 processes: the fork storm stops after about 21 forks instead of 117. Each fork copies the
# kernel's page tables: 117 took 0.6-2.1 s on this machine, quiet or busy. A storm slowed past the
# 6 s cell limit loses every later test (the interrupt reaches the sleeping children too, and the
# kernel is shut down), which is how the storm's test once failed on CI.
LIMITS = f"""
load_subconfig("nbgrader_config.py", path={str(REPO)!r})
c.Execute.timeout = 6
c.GradingSandbox.interrupt_grace = 2
c.GradingSandbox.submission_timeout = 90
c.GradingSandbox.max_output_mb = 1
c.GradingSandbox.processes = 32
"""
TESTS = ["q1_1_test_load", "q2_1_test_by_hand", "q2_1_test_new_values", "q2_2_test_range",
         "q2_2_test_value", "q3_1_test_axes", "q3_1_test_labels"]
FULL = {t: 1.0 for t in TESTS}
SECRET = "secret-of-good1-7f3a"
WRONG_Q2_1 = "def mg_l_to_mg_dl(values):\n    return values * 10"


def _scores(**lost):
    """Full marks except the test cells named (grade id -> points)."""
    return {**FULL, **lost}


def _zero(*tests):
    return _scores(**{t: 0.0 for t in tests})


def _index(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid)


def _insert_after(nb, gid, source):
    nb.cells.insert(_index(nb, gid) + 1, new_code_cell(source))
    return nb


class _Listener:
    """A TCP server on the grader's 127.0.0.1 that counts who reaches it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def _canary_dir(base: Path) -> Path:
    """A world-writable folder outside the course that a kernel can see (not under /tmp)."""
    for parent in (Path("/run"), Path("/var/lib"), base):
        try:
            folder = Path(os.path.realpath(parent)) / f"gutcourse-canary-{os.getpid()}-{time.time_ns()}"
            folder.mkdir()
            folder.chmod(0o777)
            return folder
        except OSError:
            continue
    raise RuntimeError("no folder for the canary")


def _submissions(rel, src, canary: Path, port: int) -> dict:
    """student -> notebook (or a function that breaks the written folder)."""
    correct = lambda: fill_answers(rel, src)  # noqa: E731
    subs = {}
    good1 = correct()
    good1.cells[_index(good1, "q1_1_load_markers")].source += f"\n# {SECRET}"
    subs["good1"] = good1
    subs["good2"] = correct()
    subs["partial"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": WRONG_Q2_1})

    # Damaged files.
    subs["malformed_json"] = lambda folder: (folder / f"{A}.ipynb").write_text(
        (folder / f"{A}.ipynb").read_text()[:5000])
    subs["empty_file"] = lambda folder: (folder / f"{A}.ipynb").write_text("")
    subs["misnamed"] = lambda folder: (folder / f"{A}.ipynb").rename(folder / f"{A} (1).ipynb")
    # A link in the submission to the grader's files (red-team, issue 14): nbgrader's copy for
    # grading would follow it and put the source notebook beside the student's code.
    subs["linked_loot"] = lambda folder: (folder / "loot.ipynb").symlink_to(
        folder.parents[2] / "source" / A / f"{A}.ipynb")
    # The submission folder itself a link to the source assignment (red-team, round 2).
    subs["linked_folder"] = lambda folder: (shutil.rmtree(folder), folder.symlink_to(
        folder.parents[2] / "source" / A))
    subs["no_notebook"] = lambda folder: (folder / f"{A}.ipynb").unlink()

    # Cell structure.
    nb = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": WRONG_Q2_1})
    for gid in ("q2_1_test_by_hand", "q2_1_test_new_values", "setup", "intro"):
        del nb.cells[_index(nb, gid)]
    subs["deleted_cells"] = nb
    # The locked setup cell dragged below every test, the answers importing what they use themselves
    # (red team of the referee): the referee runs setup cells in the instructor's order, so the tests
    # still find the grader's `checks`, numpy and pandas, not names fetched from the kernel.
    nb = correct()
    nb.cells.append(nb.cells.pop(_index(nb, "setup")))
    nb.cells.insert(0, new_code_cell("import math\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
                                     "import pandas as pd\nfrom gutcourse import checks, data"))
    subs["moved_setup"] = nb

    nb = correct()
    answer = nb.cells[_index(nb, "q1_1_load_markers")]
    first, second = answer.source.split("\n", 1)
    half = nbformat.from_dict(json.loads(json.dumps(answer)))
    half["id"] = "split-half"
    answer.source, half.source = first, second
    nb.cells.insert(_index(nb, "q1_1_load_markers") + 1, half)
    copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[_index(nb, "q2_2_test_value")])))
    copy["id"] = "copied-test"
    nb.cells.insert(0, copy)
    subs["duplicated_split"] = nb

    nb = fill_answers(rel, src, {"q2_2_share_high_crp": "share_high_crp = 42.0"})
    for gid in ("q2_2_test_range", "q2_2_test_value"):
        cell = nb.cells[_index(nb, gid)]
        nb.cells[_index(nb, gid)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    answer = nb.cells[_index(nb, "q1_1_load_markers")]
    nb.cells[_index(nb, "q1_1_load_markers")] = nbformat.v4.new_raw_cell(answer.source, metadata=answer.metadata)
    subs["changed_types"] = nb

    nb = nbformat.from_dict(json.loads(json.dumps(rel)))  # nothing answered
    setup = nb.cells[_index(nb, "setup")]
    setup.source += ("\nclass checks:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
                     "checks = checks()")
    for cell in nb.cells:
        if is_test(cell):
            cell.source = '"""Edited by the student."""\npass'
    subs["edited_locked"] = nb

    nb = correct()
    nb.cells.append(new_code_cell("bonus = True", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "q9_9_bonus", "points": 100,
        "schema_version": 3}}))
    nb.cells[_index(nb, "q1_1_test_load")].metadata["nbgrader"]["points"] = 50
    nb.cells[_index(nb, "q2_1_test_by_hand")].metadata["nbgrader"]["grade"] = False
    subs["forged_grades"] = nb

    # Code that runs away.
    subs["infinite_loop"] = fill_answers(rel, src, {"q2_2_share_high_crp": "while True:\n    pass"})
    subs["ignores_interrupt"] = fill_answers(rel, src, {"q2_2_share_high_crp": (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")})
    # The same, inside a function that only a test calls (the referee runs it in the kernel, issue 12).
    subs["slow_function"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": (
        "def mg_l_to_mg_dl(values):\n    while True:\n        pass")})
    subs["deaf_function"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": (
        "import signal\ndef mg_l_to_mg_dl(values):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    while True:\n        pass")})
    subs["exiting_function"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": (
        "import os\ndef mg_l_to_mg_dl(values):\n    os._exit(3)")})
    # sys.exit and exit() only end the cell; os._exit ends the kernel.
    nb = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": "import os\nos._exit(1)"})
    _insert_after(_insert_after(nb, "q1_1_test_load", "exit()"), "q1_1_test_load", "import sys\nsys.exit(3)")
    subs["kernel_exit"] = nb
    subs["segfault"] = fill_answers(rel, src, {"q3_1_plot_crp": "import ctypes\nctypes.string_at(0)"})
    # 64 blocks of 256 MB, 16 GB in all, asked for without being written to (calloc'd pages), so the
    # address-space limit stops it at once: a hog that wrote every byte would spend the 6 s cell
    # limit writing gigabytes on a busy machine before the limit was reached.
    subs["memory_hog"] = _insert_after(correct(), "q1_1_load_markers", (
        "import numpy as _np\n_hog = [_np.zeros(256 * 1024**2, dtype=_np.uint8) for _ in range(64)]"))
    subs["fork_storm"] = _insert_after(correct(), "q1_1_test_load", (
        "import os, time\nfor _ in range(100000):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(300)\n        os._exit(0)"))
    subs["output_flood"] = _insert_after(correct(), "q1_1_test_load", (
        "print('x' * 3_000_000)\nfor _i in range(100_000):\n    print('flood', _i)"))

    # Reaching outside.
    outside = f"""
import os, socket, glob
_log = []
def _try(what, f):
    try:
        f()
        _log.append('DID ' + what)
    except Exception as e:
        _log.append('no ' + what + ': ' + type(e).__name__)
_course = os.path.abspath('../../..')
_try('write canary', lambda: open({str(canary / 'canary.txt')!r}, 'w').write('pwned'))
_try('new file by canary', lambda: open({str(canary / 'new.txt')!r}, 'w').write('pwned'))
_try('read good1', lambda: print(open(_course + '/submitted/good1/{A}/{A}.ipynb').read()))
_try('read source', lambda: print(open(_course + '/source/{A}/{A}.ipynb').read()))
_try('delete good2', lambda: os.remove(_course + '/submitted/good2/{A}/{A}.ipynb'))
_try('write gradebook', lambda: open(_course + '/gradebook.db', 'ab').write(b'junk'))
_try('write repo', lambda: open({str(REPO / 'pwned.txt')!r}, 'w').write('pwned'))
print('others:', glob.glob(_course + '/submitted/*'))
os.remove('{A}.ipynb') if os.path.exists('{A}.ipynb') else None
os.symlink({str(canary / 'canary.txt')!r}, '{A}.ipynb')
print(_log)
"""
    subs["writes_outside"] = _insert_after(correct(), "q1_1_test_load", outside)
    subs["network"] = _insert_after(correct(), "q1_1_test_load", (
        f"import socket\n_reached = []\nfor _host in ('127.0.0.1', '1.1.1.1'):\n    try:\n"
        f"        socket.create_connection((_host, {port}), timeout=2).close()\n        _reached.append(_host)\n"
        f"    except OSError as e:\n        print(_host, e)\nprint('reached', _reached)"))

    # Reaching the kernel template (the fork server) or the other kernels it forked.
    subs["reach_template"] = _insert_after(correct(), "q1_1_test_load", """
import glob, os, signal, socket
_me = os.getpid()
_seen = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
_others = []
for _pid in _seen:
    try:
        if os.stat(f'/proc/{_pid}').st_uid != os.getuid():
            _others.append(_pid)
    except OSError:
        pass
_tasks = {int(t) for _pid in _seen if os.path.isdir(f'/proc/{_pid}/task') for t in os.listdir(f'/proc/{_pid}/task')}
_signalled = []
for _pid in range(1, 1 << 15):
    if _pid in _seen or _pid in _tasks or os.path.isdir(f'/proc/{_pid}'):
        continue
    try:
        os.kill(_pid, 0)
        _signalled.append(_pid)
    except OSError:
        pass
_sockets = glob.glob('/tmp/gutcourse-template-*/*') + glob.glob('/tmp/*/s')
_connected = []
for _path in _sockets:
    try:
        socket.socket(socket.AF_UNIX).connect(_path)
        _connected.append(_path)
    except OSError:
        pass
print('TEMPLATE-HUNT', {'others': _others, 'signalled': _signalled, 'sockets': _sockets,
                        'connected': _connected, 'seen': len(_seen)})
""")

    # Tests fooled by patched helpers.
    patch = ("import builtins, math\nimport numpy as np\nimport pandas as pd\n"
             "np.isclose = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
             "math.isclose = lambda *a, **k: True\nbuiltins.abs = lambda x: 0\n"
             "pd.testing.assert_series_equal = lambda *a, **k: None\n"
             "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)\n")
    subs["patched_helpers"] = _insert_after(
        fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": WRONG_Q2_1, "q2_2_share_high_crp": "share_high_crp = 42.0"}),
        "q1_1_test_load", patch)
    subs["patched_checks"] = _insert_after(
        fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": WRONG_Q2_1}), "q1_1_test_load",
        "checks.check_values = lambda *a, **k: None\nchecks.check_close = lambda *a, **k: None")

    # Red-team of the referee: an answer that changes its input in place, and the hand-out of the
    # arguments after the call patched to hide it. The kernel is the only witness of what a function
    # does to its input, so this is detected (reported for review), not prevented (docs/security.md).
    in_place = ("import numpy as np\nimport pandas as pd\ndef mg_l_to_mg_dl(values):\n"
                "    if isinstance(values, (np.ndarray, pd.Series)) and values.dtype.kind == 'f':\n"
                "        values /= 10\n        return values\n    return values / 10")
    subs["in_place"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": in_place})
    subs["hidden_mutation"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": in_place + (
        "\nimport gutcourse.handout as _h\n_h._after = lambda args: [None] * len(args)")})
    # Red team round 8: the same patch through a module name built at run time.
    subs["hidden_mutation_quiet"] = fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": in_place + (
        "\nimport importlib\n_h = importlib.import_module('gutcourse.' + 'hand' + 'out')"
        "\n_h._after = lambda args, sent=None: [None] * len(args)")})

    # Red team round 8: a label that stalled a hidden test's regular expression for hours (the
    # grader cannot interrupt one), and a reply of millions of empty lists (3 GB of the grader's memory).
    subs["huge_label"] = _insert_after(correct(), "q3_1_plot_crp",
                                       "ax_crp.set_xlabel('hs-CRP (mg/L) log' + ' ' * 20000)")
    subs["json_bomb"] = _insert_after(correct(), "q2_2_share_high_crp", (
        "import importlib\n_h = importlib.import_module('gutcourse.' + 'hand' + 'out')\n"
        "_fetch = _h.fetch\n"
        "def _bomb(name, *rest):\n"
        "    return '{\"ok\":[' + '[],' * 2_000_000 + '[]]}' if name == 'share_high_crp' else _fetch(name, *rest)\n"
        "_h.fetch = _h._OPERATIONS['fetch'] = _bomb"))

    # Issue 12: tricks on checks that run in the student's process. Test cells are judged by the
    # referee, outside the kernel, so each of these scores what its answers (WRONG_Q2_1) score alone.
    for student, code in TRICKS.items():
        subs[student] = _insert_after(fill_answers(rel, src, {"q2_1_mg_l_to_mg_dl": WRONG_Q2_1}), "q2_1_mg_l_to_mg_dl",
                                      code.replace("@REPO@", str(REPO)).replace("@A@", A))
    return subs


# Issue 12's techniques, each added after the answer cell of Question 2.1 in a submission whose only wrong answer is
# WRONG_Q2_1 (the student "partial" hands in the same answers without a trick).
TRICKS = {
    # The checks patched through another name, and their code objects swapped.
    "alias_patch": ("import gutcourse.checks as _c\n"
                    "_c.check_close = _c.check_values = _c.check_type = _c.fail = lambda *a, **k: None\n"
                    "_c.close = lambda *a, **k: True"),
    "code_swap": ("from gutcourse import checks as _c\n"
                  "def _quiet(*a, **k):\n    return None\n"
                  "for _n in ('check_close', 'check_values', 'check_type', 'check_labels', 'fail'):\n"
                  "    getattr(_c, _n).__code__ = _quiet.__code__\n"
                  "_c.close.__code__ = (lambda *a, **k: True).__code__"),
    # numpy and pandas patched where a comparison would call them.
    "numpy_patch": ("import numpy as np, pandas as pd\n"
                    "np.isclose = np.allclose = lambda *a, **k: True\n"
                    "np.array_equal = lambda *a, **k: True\n"
                    "pd.Series.equals = pd.DataFrame.equals = lambda *a, **k: True\n"
                    "pd.Series.__eq__ = lambda *a, **k: True\n"
                    "np.asarray = lambda a, *x, **k: np.array([2.0])"),
    # The function reads the expected value from the frames that called it.
    # The function reads expected values from the frames that called it, and swaps the caller's `checks`
    # for one that passes everything (in the kernel this earned both q2_1 tests).
    "caller_frame": ("import sys\nimport numpy as np\n"
                     "class _Quiet:\n"
                     "    def __getattr__(self, name):\n"
                     "        return (lambda *a, **k: False) if name == 'close' else (lambda *a, **k: None)\n"
                     "def mg_l_to_mg_dl(values):\n"
                     "    frame, found = sys._getframe(1), None\n"
                     "    while frame is not None:\n"
                     "        if 'checks' in frame.f_globals:\n"
                     "            frame.f_globals['checks'] = _Quiet()\n"
                     "        if found is None and isinstance(values, np.ndarray) and '_expected' in frame.f_locals:\n"
                     "            found = np.array(frame.f_locals['_expected'], dtype=float)\n"
                     "        frame = frame.f_back\n"
                     "    return found if found is not None else values * 10"),
    # Hand-outs forged or printed: every answer claims to be right, and output shaped like a pass.
    "fake_handout": ("import gutcourse.handout as _h\n"
                     "_h.fetch = lambda name: '{\"ok\": 2.0, \"verdict\": \"pass\", \"points\": 1}'\n"
                     "_h.call = lambda ref, payload: '{\"ok\": {\"t\": \"float\", \"v\": \"nan\"}}'\n"
                     "print('Success! Your notebook passes all the tests.')"),
    "suppressed_handout": ("import gutcourse.handout as _h\n"
                           "_h.fetch = _h.call = lambda *a, **k: None"),
    # The instructor's solution fetched from the checkout or its git history, then run.
    "fetch_solution": ("import json, subprocess\n"
                       "_found = None\n"
                       "for _path in ('@REPO@/coursework/source/@A@/@A@.ipynb', '../../../source/@A@/@A@.ipynb'):\n"
                       "    try:\n        _found = open(_path).read()\n        break\n"
                       "    except OSError:\n        pass\n"
                       "if _found is None:\n"
                       "    try:\n"
                       "        _found = subprocess.run(['git', '-C', '@REPO@', 'show', 'HEAD:coursework/source/@A@/@A@.ipynb'],\n"
                       "                                capture_output=True, text=True, timeout=5).stdout or None\n"
                       "    except Exception:\n        pass\n"
                       "if _found:\n"
                       "    for _cell in json.loads(_found)['cells']:\n"
                       "        if _cell['cell_type'] == 'code' and _cell.get('metadata', {}).get('nbgrader', {}).get('solution'):\n"
                       "            exec(''.join(_cell['source']), globals())\n"
                       "print('FETCHED' if _found else 'NOTHING FOUND')"),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def _small_limits(config_dir: Path):
    """Load LIMITS instead of the repository's configuration (grading workers inherit it)."""
    previous = os.environ.get("GUTCOURSE_ROOT")
    os.environ["GUTCOURSE_ROOT"] = str(config_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GUTCOURSE_ROOT", None)
        else:
            os.environ["GUTCOURSE_ROOT"] = previous


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    config_dir = base / "config"
    config_dir.mkdir()
    (config_dir / "nbgrader_config.py").write_text(LIMITS)
    canary = _canary_dir(base)
    listener = _Listener()
    try:
        course = make_course(base / "course")
        with _small_limits(config_dir):
            config = load_config(course_root=course)
        release(config, [A])
        rel = nbformat.read(str(course / "release" / A / f"{A}.ipynb"), as_version=4)
        src = nbformat.read(str(course / "source" / A / f"{A}.ipynb"), as_version=4)
        (canary / "canary.txt").write_text("canary")
        (canary / "canary.txt").chmod(0o666)
        for student, nb in _submissions(rel, src, canary, listener.port).items():
            if callable(nb):
                nb(submit(config, A, student, fill_answers(rel, src)).parent)
            else:
                submit(config, A, student, nb)
        good_files = {s: _sha(course / "submitted" / s / A / f"{A}.ipynb") for s in ("good1", "good2")}
        started = time.monotonic()
        with _small_limits(config_dir):
            run = grade_class(config, A, workers=2, progress=None)
        elapsed = time.monotonic() - started
        yield SimpleNamespace(course=course, config=config, run=run, elapsed=elapsed, canary=canary,
                              config_dir=config_dir,
                              listener=listener, good_files=good_files,
                              outcome={o.student: o for o in run},
                              platform=sandbox.detect(config))
    finally:
        listener.close()
        shutil.rmtree(canary, ignore_errors=True)


def _cell_scores(graded, student):
    result = read_result(graded.config, A, student)
    return {g: c.points for g, c in result.cells.items()}, result


def _isolated(graded) -> bool:
    if os.environ.get("CI") == "true" and sys.platform.startswith("linux") and os.geteuid() == 0:
        assert graded.platform.mode == "namespaces", graded.platform
    return graded.platform.mode in ("namespaces", "bwrap")


# --------------------------------------------------------------------------- the run as a whole
def test_the_run_finishes_quickly_and_the_gradebook_is_intact(graded):
    print(f"graded {len(graded.run)} submissions in {graded.elapsed:.1f} s: "
          + ", ".join(f"{o.student} {o.seconds:.1f}" for o in graded.run))
    assert graded.elapsed < 300
    db = sqlite_path(graded.config.CourseDirectory.db_url)
    assert graded.run.problems == [] and integrity_problems(db) == []
    assert graded.run.backup is not None and graded.run.backup in list_backups(graded.course)
    assert "grading sandbox" in graded.run.sandbox
    failed = {o.student for o in graded.run if o.status == "failed"}
    assert failed == {"malformed_json", "empty_file", "misnamed", "no_notebook", "linked_loot", "linked_folder"}


def test_correct_neighbours_get_their_right_grades(graded):
    for student in ("good1", "good2"):
        scores, result = _cell_scores(graded, student)
        assert scores == FULL, student
        assert result.max_auto_score == 7 and graded.outcome[student].notes == []
    assert _cell_scores(graded, "partial")[0] == _zero("q2_1_test_by_hand", "q2_1_test_new_values")


# --------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("student, words", [
    ("malformed_json", ["NotJSONError", "cut off or damaged"]),
    ("empty_file", ["EmptyNotebook"]),
    ("misnamed", ["MissingNotebook", f"{A} (1).ipynb", "rename"]),
    ("no_notebook", ["MissingNotebook", f"no {A}.ipynb"]),
    ("linked_loot", ["loot.ipynb", "symbolic link", "not graded"]),
    ("linked_folder", [f"submitted/linked_folder/{A} is a symbolic link", "not graded"]),
])
def test_damaged_submissions_are_reported_with_a_reason(graded, student, words):
    outcome = graded.outcome[student]
    assert outcome.status == "failed"
    for word in words:
        assert word in outcome.reason, outcome.reason


def test_a_linked_file_in_a_submission_never_reaches_grading(graded):
    assert not (graded.course / "autograded" / "linked_loot").exists()
    assert not (graded.course / "autograded" / "linked_folder").exists()
    from gutcourse.grading.classgrade import unsafe_entries

    folder = graded.course / "submitted" / "linked_loot" / A
    assert [rel for rel, _ in unsafe_entries(folder)] == ["loot.ipynb"]
    assert unsafe_entries(graded.course / "submitted" / "good1" / A) == []


# --------------------------------------------------------------------------- cell structure
def test_deleted_test_and_setup_cells_are_restored_and_run(graded):
    scores, _ = _cell_scores(graded, "deleted_cells")
    assert scores == _zero("q2_1_test_by_hand", "q2_1_test_new_values")  # the wrong answer is still caught
    assert any("restored" in n and "q2_1_test_by_hand" in n for n in graded.outcome["deleted_cells"].notes)


def test_a_setup_cell_moved_below_the_tests_changes_no_grade(graded):
    assert _cell_scores(graded, "moved_setup")[0] == FULL


def test_split_answers_and_copied_tests_grade_normally(graded):
    assert _cell_scores(graded, "duplicated_split")[0] == FULL
    assert any("duplicate" in n for n in graded.outcome["duplicated_split"].notes)


def test_changed_cell_types_do_not_skip_tests(graded):
    assert _cell_scores(graded, "changed_types")[0] == _zero("q2_2_test_range", "q2_2_test_value")


def test_edited_locked_and_test_cells_are_put_back(graded):
    assert _cell_scores(graded, "edited_locked")[0] == {t: 0.0 for t in TESTS}


def test_forged_grade_cells_and_points_are_ignored(graded):
    scores, result = _cell_scores(graded, "forged_grades")
    assert scores == FULL and result.max_auto_score == 7


# --------------------------------------------------------------------------- code that runs away
def test_an_infinite_loop_costs_only_its_question(graded):
    assert _cell_scores(graded, "infinite_loop")[0] == _zero("q2_2_test_range", "q2_2_test_value")


def test_a_kernel_ignoring_interrupts_is_stopped_and_earlier_points_kept(graded):
    scores, _ = _cell_scores(graded, "ignores_interrupt")
    assert scores == _zero("q2_2_test_range", "q2_2_test_value", "q3_1_test_axes", "q3_1_test_labels")
    outcome = graded.outcome["ignores_interrupt"]
    assert any("did not stop" in n for n in outcome.notes), outcome.notes
    # timeout (6 s) + grace (2 s) + kernel start, not one timeout per remaining cell
    assert outcome.seconds < 45


def test_a_function_that_runs_away_under_a_test_costs_only_that_test(graded):
    scores, result = _cell_scores(graded, "slow_function")
    assert scores == _zero("q2_1_test_by_hand", "q2_1_test_new_values")
    assert "ran past" in result.cells["q2_1_test_by_hand"].message


@pytest.mark.parametrize("student, lost, words", [
    ("kernel_exit", TESTS[1:], "exited with code 1"),
    ("segfault", TESTS[5:], "SIGSEGV"),
    ("exiting_function", TESTS[1:], "exited with code 3 while this test ran the student's code"),
    ("deaf_function", TESTS[1:], "did not stop within"),
])
def test_a_dying_kernel_is_reported_and_later_tests_do_not_pass(graded, student, lost, words):
    # jupyter/nbgrader#427: tests after a dead kernel must not count as passed.
    assert graded.outcome[student].status == "graded"
    assert _cell_scores(graded, student)[0] == _zero(*lost)
    assert any(words in n for n in graded.outcome[student].notes), graded.outcome[student].notes


@pytest.mark.parametrize("student", ["memory_hog", "fork_storm"])
def test_resource_hogs_hit_their_limits_not_the_grader(graded, student):
    scores, result = _cell_scores(graded, student)
    assert scores == FULL, (graded.outcome[student].notes,
                            {g: c.message for g, c in result.cells.items() if c.points != 1.0})
    executed = nbformat.read(str(graded.course / "autograded" / student / A / f"{A}.ipynb"), as_version=4)
    errors = [o.ename for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    if student == "memory_hog":
        assert errors == ["MemoryError"], errors
    else:
        assert errors in ([], ["BlockingIOError"]), errors


def test_no_kernel_process_outlives_the_run(graded):
    """Not even the fork storm's sleeping children: nothing runs in the class's folders any more."""
    if graded.platform.mode not in ("namespaces", "bwrap"):
        pytest.skip("without namespaces a forked child can escape its kernel (docs/security.md)")
    leftovers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(graded.course)):
                    leftovers.append(entry)
            except OSError:
                pass
    assert leftovers == []


def test_an_output_flood_leaves_small_feedback(graded):
    assert _cell_scores(graded, "output_flood")[0] == FULL
    executed = graded.course / "autograded" / "output_flood" / A / f"{A}.ipynb"
    assert executed.stat().st_size < 1_500_000
    assert any("output beyond" in n for n in graded.outcome["output_flood"].notes)
    assert generate_feedback(graded.config, A, ["output_flood"]) == {"output_flood": None}
    assert (graded.course / "feedback" / "output_flood" / A / f"{A}.html").stat().st_size < 1_500_000


# --------------------------------------------------------------------------- reaching outside
def test_writes_outside_the_folder_change_nothing(graded):
    assert _cell_scores(graded, "writes_outside")[0] == FULL
    assert (graded.canary / "canary.txt").read_text() == "canary"
    assert not (REPO / "pwned.txt").exists()
    for student, digest in graded.good_files.items():
        assert _sha(graded.course / "submitted" / student / A / f"{A}.ipynb") == digest
    folder = graded.course / "autograded" / "writes_outside" / A
    notebook = folder / f"{A}.ipynb"
    assert not notebook.is_symlink() and notebook.is_file()
    assert all(p.stat().st_uid == os.getuid() for p in folder.rglob("*"))
    if _isolated(graded):
        assert not (graded.canary / "new.txt").exists()
        executed = nbformat.read(str(notebook), as_version=4)
        text = "\n".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert SECRET not in text and "BEGIN SOLUTION" not in text and "submitted/good1" not in text
        assert "no write canary" in text and "DID" not in text


def test_the_kernel_template_and_other_kernels_are_out_of_reach(graded):
    """A submission hunting for the fork server or its neighbours' kernels finds nothing."""
    assert _cell_scores(graded, "reach_template")[0] == FULL
    if graded.platform.mode != "namespaces":
        pytest.skip("kernels are forked from a template only in the namespaces sandbox")
    assert "forked from a per-worker template" in graded.run.sandbox
    executed = nbformat.read(str(graded.course / "autograded" / "reach_template" / A / f"{A}.ipynb"),
                             as_version=4)
    text = "\n".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    line = next(x for x in text.splitlines() if x.startswith("TEMPLATE-HUNT"))
    found = ast.literal_eval(line.removeprefix("TEMPLATE-HUNT").strip())  # what the kernel printed
    assert found["others"] == [] and found["signalled"] == [], found
    assert found["sockets"] == [] and found["connected"] == [], found
    assert found["seen"] < 10, found  # its own PID namespace: the kernel and what it started


def test_network_use_reaches_nothing(graded):
    assert _cell_scores(graded, "network")[0] == FULL
    if _isolated(graded):
        assert graded.listener.connections == 0


def test_patched_comparison_helpers_do_not_fool_the_tests(graded):
    scores, _ = _cell_scores(graded, "patched_helpers")
    for test in ("q2_1_test_by_hand", "q2_1_test_new_values", "q2_2_test_range", "q2_2_test_value"):
        assert scores[test] == 0.0, test
    assert any("tampering" in n for n in graded.outcome["patched_helpers"].notes)


def test_patching_checks_itself_is_flagged_for_review(graded):
    # The referee's checks are out of the kernel's reach, so this changes nothing; it is still reported.
    notes = graded.outcome["patched_checks"].notes
    assert any("tampering" in n and "checks.check_values" in n for n in notes), notes
    assert _cell_scores(graded, "patched_checks")[0] == _cell_scores(graded, "partial")[0]


def test_hiding_a_change_to_the_input_is_reported_for_review(graded):
    assert _cell_scores(graded, "in_place")[0] == _zero("q2_1_test_new_values")
    notes = graded.outcome["hidden_mutation"].notes
    assert any("tampering" in n and "gutcourse.handout" in n for n in notes), notes
    assert not any("handout" in n for n in graded.outcome["in_place"].notes)
    # The in-place change itself is reported for review (red team: a wrong function that changes its input
    # can move an expected value a test computes from that input after the call).
    assert any("`mg_l_to_mg_dl` changed an argument" in n for n in graded.outcome["in_place"].notes)


@pytest.mark.parametrize("student", sorted(TRICKS))
def test_tricks_on_the_checks_earn_nothing(graded, student):
    """Each trick scores no more than the same answers without it (issue 12), and the answer it bends stays wrong."""
    if student == "fetch_solution" and not _isolated(graded):
        pytest.skip("without isolation a kernel can read the checkout (docs/security.md)")
    scores, _ = _cell_scores(graded, student)
    plain, _ = _cell_scores(graded, "partial")
    assert plain == _zero("q2_1_test_by_hand", "q2_1_test_new_values")
    assert all(scores[t] <= plain[t] for t in TESTS), (scores, plain)
    assert scores["q2_1_test_by_hand"] == scores["q2_1_test_new_values"] == 0.0


# --------------------------------------------------------------------------- pieces on their own
def test_a_notebook_past_its_total_time_stops_there(tmp_path):
    course = tmp_path / "course"
    own = course / "autograded" / "s1" / A
    own.mkdir(parents=True)
    config = load_config(course_root=course)
    # The clock starts with the first cell, so a kernel slow to start does not count; the margins
    # (1 s used of 5, then a cell of 8 s) leave room for a busy machine.
    config.GradingSandbox.submission_timeout = 5
    cells = [new_code_cell("import time\ntime.sleep(1)"), new_code_cell("time.sleep(8)"), new_code_cell("print('late')")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                           "language": "python"}})
    with incidents.collected() as notes:
        nb, _ = sandbox.GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(own)}})
    errors = [[o.ename for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert errors[0] == [] and errors[2] == ["NotRun"], errors
    assert any("later cells not run" in n for n in notes)


def test_mount_plan_hides_the_course_but_keeps_the_submission(tmp_path):
    course, home, private = tmp_path / "course", tmp_path / "home", tmp_path / "private"
    own = course / "autograded" / "s1" / "ps0"
    for folder in (own, course / "source", home / "venv", private / "python"):
        folder.mkdir(parents=True)
    private.chmod(0o700)
    needed = [str(home / "venv"), str(private / "python"), str(course / "source")]
    plan = sandbox.mount_plan([str(course)], needed, [str(own)], root=True, mask=[str(home)])
    paths = [p for _, p in plan]
    assert ("hide", str(course)) in plan and ("bind_rw", str(own)) in plan
    assert paths.index(str(course)) < paths.index(str(own))
    # The grader's home is emptied, but the environment the kernel needs comes back read-only.
    assert ("hide", str(home)) in plan and ("bind_ro", str(home / "venv")) in plan
    # As root the kernel is another user: a needed folder inside a private one is exposed alone.
    opaque = sandbox._opaque_ancestor(str(private / "python"))
    assert opaque and ("hide", opaque) in plan and ("bind_ro", str(private / "python")) in plan
    # Nothing the grader needs reopens the hidden course.
    assert ("bind_ro", str(course / "source")) not in plan


def test_sanitize_removes_links_the_kernel_left(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    target = tmp_path / "target.txt"
    target.write_text("keep")
    os.symlink(target, folder / "nb.ipynb")
    os.link(target, folder / "hard.txt")
    os.mkfifo(folder / "fifo")
    removed = sandbox.sanitize_folder(folder, None, (os.getuid(), os.getgid()))
    assert sorted(removed) == ["fifo", "hard.txt", "nb.ipynb"]
    assert sorted(p.name for p in folder.iterdir()) == ["ok.txt"] and target.read_text() == "keep"


def test_tampering_scan_reads_answers_not_tests():
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("np.isclose = lambda *a: True"),
        new_code_cell("checks = None", metadata={"nbgrader": {"locked": True, "grade_id": "setup"}}),
        new_code_cell("%matplotlib inline\nx = eval('1')"),
        new_code_cell("y = np.mean(x)"),
    ])
    found = tampering(nb)
    assert any("np.isclose" in f for f in found) and any("eval" in f for f in found)
    assert not any("cell 2" in f or "cell 4" in f for f in found)


@pytest.mark.parametrize("code, flagged", [
    ("import gutcourse.handout as h\nh.reach = None", True),
    ("from gutcourse import handout", True),
    ("import importlib\nm = importlib.import_module('gutcourse.' + 'handout')", True),
    ("__import__('gutcourse.handout')", True),
    ("import sys\nsys.modules['gutcourse.handout'].call = None", True),
    ("print('see the course handout, page 2')\nhandout_pages = 2", False),
])
def test_reaching_the_handout_channel_is_flagged(code, flagged):
    found = tampering(nbformat.v4.new_notebook(cells=[new_code_cell(code)]))
    assert any("gutcourse.handout" in f for f in found) == flagged, found


def test_a_test_cells_temporaries_are_not_helpers_but_blinding_the_watch_is_flagged():
    """Red-team round 2: `_r = rarefy(...)` in an answer is honest; turning the profiler off is not."""
    test = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "q1_test", "points": 1}}
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("_r = rarefy(t, 10)\n_name = 'x'", metadata=test),
        new_code_cell("_r = rarefy(counts, 10)\ndef shannon(c):\n    _name = 'mine'\n    return 0"),
        new_code_cell("import sys\ndef simpson(c):\n    sys.setprofile(None)\n    return 0"),
        new_code_cell("import threading\nt = threading.Thread(target=print)"),
    ])
    found = tampering(nb)
    assert not any("cell 2" in f for f in found), found
    assert any("cell 3" in f and "setprofile" in f for f in found) and any("cell 4" in f for f in found), found


def test_redefining_a_test_helper_from_the_setup_cell_is_flagged():
    """A student cell that rebinds a locked cell's private test helper (say ps3's _library_calls) is reported."""
    setup = {"nbgrader": {"locked": True, "grade_id": "setup"}}
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("def _library_calls(f):\n    return []\n_TOY = 1\npublic = 2", metadata=setup),
        new_code_cell("def _library_calls(*a):\n    return []"),
        new_code_cell("_TOY, other = 5, 6"),
        new_code_cell("public = 3\n_mine = 4"),
    ])
    found = tampering(nb)
    assert any("cell 2 redefines the test helper _library_calls" in f for f in found), found
    assert any("cell 3 rebinds the test helper _TOY" in f for f in found), found
    assert not any(f.startswith("cell 1") or f.startswith("cell 4") for f in found), found


def test_diagnose_names_what_is_wrong(tmp_path):
    assert "no submission folder" in diagnose(tmp_path / "missing", [A])
    (tmp_path / f"{A}.ipynb").write_text('{"cells": [')
    assert "NotJSONError" in diagnose(tmp_path, [A])
    (tmp_path / f"{A}.ipynb").write_text(json.dumps({"cells": "not a list"}))
    assert "InvalidNotebook" in diagnose(tmp_path, [A])


@pytest.mark.skipif(not (shutil.which("bwrap") and shutil.which("setpriv") and hasattr(os, "geteuid")
                         and os.geteuid() == 0 and Path("/usr/bin/python3").exists()),
                    reason="needs bubblewrap, setpriv, root (to become an ordinary user) and /usr/bin/python3")
def test_bubblewrap_mode_isolates_an_ordinary_user():
    """The unprivileged path: bubblewrap run by an ordinary user (nobody) hides, blocks, keeps writable."""
    base = Path(tempfile.mkdtemp(prefix="gutcourse-bwrap-", dir="/var/tmp"))
    try:
        _bubblewrap_as_nobody(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _bubblewrap_as_nobody(base: Path):
    course, runtime = base / "course", base / "runtime"
    own = course / "autograded" / "s1" / "ps0"
    own.mkdir(parents=True)
    (course / "secret.txt").write_text("secret")
    runtime.mkdir()
    launcher = base / "launch.py"
    shutil.copy(sandbox.LAUNCHER, launcher)
    for path in [base, *base.rglob("*")]:
        os.chown(path, 65534, 65534)
    spec = {"mode": "bwrap", "uid": None, "gid": None, "limits": {"RLIMIT_NPROC": 4096},
            "mounts": sandbox.mount_plan([str(course)], [], [str(own), str(runtime)], root=False),
            "scratch_mb": 16, "network": False, "cwd": str(own), "env": {}, "bwrap": shutil.which("bwrap")}
    code = ("import os, socket\nprint(os.listdir(%r), os.path.exists(%r))\nopen('mine', 'w').write('x')\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\nexcept OSError as e:\n"
            "    print('net', e.errno)\n" % (str(course), str(course / "secret.txt")))
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                           "-I", "-S", str(launcher), json.dumps(spec), "--", "/usr/bin/python3", "-c", code],
                          capture_output=True, text=True, timeout=60, cwd="/")
    if "No permissions to create new namespace" in done.stderr or "Operation not permitted" in done.stderr:
        pytest.skip(f"user namespaces are not allowed here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert "['autograded'] False" in done.stdout and "net 101" in done.stdout
    assert (own / "mine").read_text() == "x"
    # An interrupt sent to the process group, as jupyter_client sends it, reaches the code, not bubblewrap.
    waits = ("import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(7))\n"
             "print('ready', flush=True)\ntime.sleep(30)\n")
    proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                             "-I", "-S", str(launcher), json.dumps(spec), "--", "/usr/bin/python3", "-c", waits],
                            stdout=subprocess.PIPE, text=True, start_new_session=True, cwd="/")
    assert proc.stdout.readline().strip() == "ready"
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 7


# --------------------------------------------------------------------------- backups and restore
def test_backup_before_each_run_restore_and_kill_at_start(graded, tmp_path, monkeypatch, capsys):
    course = tmp_path / "course"
    shutil.copytree(graded.course, course, ignore=shutil.ignore_patterns("autograded", ".gutcourse"))
    keep = {"good1", "partial"}
    for folder in (course / "submitted").iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder)
    db = course / "gradebook.db"
    before = len(list_backups(course))
    monkeypatch.setenv("GUTCOURSE_ROOT", str(graded.config_dir))

    # Killed while it starts (probe, backup): nothing half-done stays behind.
    proc = subprocess.Popen([sys.executable, "-m", "gutcourse.cli", "grade", A, "--workers", "2"],
                            env=dict(os.environ, GUTCOURSE_COURSE_ROOT=str(course)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(2.5)
    os.killpg(proc.pid, 9)
    proc.wait()
    result = run_cli(course, "grade", A, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("grading sandbox") == 1
    assert "backed up before grading" in result.stdout
    assert not list((course / ".backups").glob("*.partial"))
    assert len(list_backups(course)) >= before + 1 and integrity_problems(db) == []
    assert {s: _cell_scores(SimpleNamespace(config=load_config(course_root=course)), s)[0] for s in keep} == \
        {"good1": FULL, "partial": _zero("q2_1_test_by_hand", "q2_1_test_new_values")}

    # A damaged gradebook is put back from the newest backup; the damaged one is kept too.
    monkeypatch.setenv("GUTCOURSE_COURSE_ROOT", str(course))
    assert cli.main(["gradebook", "check", A]) == 0, capsys.readouterr()
    db.write_bytes(b"this is not a database" * 100)
    for extra in course.glob("gradebook.db-*"):
        extra.unlink()
    assert integrity_problems(db)
    capsys.readouterr()
    assert cli.main(["gradebook", "restore"]) == 0
    assert "restored gradebook-" in capsys.readouterr().out
    assert integrity_problems(db) == []
    assert cli.main(["gradebook", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("-before-restore.db")


def test_hiding_a_change_to_the_input_through_a_built_module_name_is_reported_for_review(graded):
    """Red team round 8: importlib.import_module('gutcourse.' + 'hand' + 'out') got the point with no note."""
    notes = graded.outcome["hidden_mutation_quiet"].notes
    assert any("tampering" in n and "gutcourse.handout" in n and "_h._after" in n for n in notes), notes


def test_a_label_too_long_for_a_tests_pattern_is_graded_as_any_label(graded):
    """Red team round 8: 2,500 spaces after the units held a worker for 259 s; 20,000 would take days."""
    scores, result = _cell_scores(graded, "huge_label")
    assert scores == FULL, {g: c.message for g, c in result.cells.items() if c.message}


def test_an_answer_too_large_to_parse_is_refused_before_it_is_parsed(graded):
    """Red team round 8: a reply of empty lists is small on the wire and huge once parsed by the grader."""
    scores, result = _cell_scores(graded, "json_bomb")
    assert scores == _zero("q2_2_test_range", "q2_2_test_value"), scores
    for test in ("q2_2_test_range", "q2_2_test_value"):
        assert "too large to read" in result.cells[test].message, result.cells[test].message
    assert any("tampering" in n and "gutcourse.handout" in n for n in graded.outcome["json_bomb"].notes)
