"""The grader's static scan for tampering (gutcourse.grading.repair.tampering), on code alone.

Red team round 8 (section 3): a cell that reached gutcourse.handout through a name built at run
time (``importlib.import_module('gutcourse.' + 'hand' + 'out')``) and replaced ``_after`` hid an
answer's change to its input and got no review note. Each way below of reaching a module, a
namespace or a caller's frame by a computed name, and each assignment through what it reached,
is reported; ordinary answers, the solutions and the correct alternatives of the banks are not.
"""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from gutcourse.grading.bank import load_alternatives
from gutcourse.grading.repair import _findings, _parse, tampering

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "coursework" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").is_file())
SETUP = {"nbgrader": {"grade": False, "solution": False, "locked": True, "grade_id": "setup"}}


def scan(*cells, setup="from gutcourse import checks, data"):
    """The findings on a notebook of a locked setup cell followed by the student cells given."""
    return tampering(new_notebook(cells=[new_code_cell(setup, metadata=SETUP)]
                                  + [new_code_cell(c) for c in cells]))


# Each reaches a module by a computed name, or patches what it reached (what a finding must mention).
EVASIONS = {
    "red_team_round_8": ("import importlib\n_h = importlib.import_module('gutcourse.' + 'hand' + 'out')\n"
                         "_h._after = lambda args, sent=None: [None] * len(args)", "gutcourse.handout"),
    "import_module_unknown_name": ("import importlib\nm = importlib.import_module(name)", "importlib"),
    "import_module_aliased": ("from importlib import import_module as im\nm = im(prefix + suffix)",
                              "import_module"),
    "importlib_util": ("import importlib.util\nspec = importlib.util.find_spec(name)", "importlib"),
    "dunder_import": ("m = __import__(name, fromlist=['x'])", "__import__"),
    "dunder_import_aliased": ("imp = __import__\nm = imp(name)", "__import__"),
    "sys_modules_subscript": ("import sys\nm = sys.modules[name]", "sys.modules"),
    "sys_modules_get": ("import sys\nm = sys.modules.get(name)", "sys.modules"),
    "sys_modules_values": ("import sys\nfound = [m for m in sys.modules.values() if hasattr(m, '_after')]",
                           "sys.modules"),
    "sys_aliased": ("import sys as _s\nm = _s.modules[name]", "_s.modules"),
    "sys_through_another_module": ("import os\nm = os.sys.modules[name]", "os.sys.modules"),
    "from_sys_import_modules": ("from sys import modules\nm = modules[name]", "sys.modules"),
    "builtins_module": ("import builtins\nf = builtins.__import__", "builtins"),
    "builtins_name": ("b = __builtins__\nf = b['__imp' + 'ort__'] if isinstance(b, dict) else b.__import__",
                      "__builtins__"),
    "builtin_self": ("b = len.__self__", "__self__"),
    "getattr_built_name_on_module": ("from gutcourse import checks as c\nm = getattr(c, 'hand' + 'out')",
                                     "gutcourse.handout"),
    "getattr_variable_on_module": ("import gutcourse\nm = getattr(gutcourse, name)", "computed name"),
    "getattr_built_name": ("f = getattr(obj, '__glo' + 'bals__')", "__globals__"),
    "getattr_aliased": ("g = getattr\nm = g(checks, 'hand' + 'out')", "gutcourse.handout"),
    "attrgetter": ("from operator import attrgetter\nm = attrgetter('hand' + 'out')(checks)", "handout"),
    "module_dict": ("d = checks.__dict__", "__dict__"),
    "function_globals": ("g = checks.check_close.__globals__", "__globals__"),
    "traceback_frame": ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
                        "    g = e.__traceback__.tb_frame.f_globals", "f_globals"),
    "subclasses": ("c = object.__subclasses__()", "__subclasses__"),
    "vars_of_a_module": ("d = vars(checks)", "vars"),
    "string_joined": ("m = sys.modules[''.join(['gutcourse', '.hand', 'out'])]", "gutcourse.handout"),
    "f_string": ("part = 'out'\nm = sys.modules[f'gutcourse.hand{\"out\"}']", "gutcourse.handout"),
    "exec_computed": ("exec(code)", "exec"),
    "eval_computed": ("x = eval('1' + '+1')", "eval"),
    "compile_builtin": ("c = compile(src, 'x', 'exec')", "compile"),
    "pickle": ("import pickle\nm = pickle.loads(blob)", "pickle"),
    "inspect": ("import inspect\nframe = inspect.currentframe()", "inspect"),
}


@pytest.mark.parametrize("name", sorted(EVASIONS))
def test_reaching_a_module_by_a_computed_name_is_flagged(name):
    code, words = EVASIONS[name]
    found = scan(code)
    assert found and all(f.startswith("cell 2 ") for f in found), found
    assert any(words in f for f in found), found


@pytest.mark.parametrize("code, target", [
    ("import importlib\n_h = importlib.import_module('gutcourse.' + 'hand' + 'out')\n_h._after = None", "_h._after"),
    ("import importlib\n_h = importlib.import_module(n)\n_h._OPERATIONS['call'] = None", "_h._OPERATIONS['call']"),
    ("import importlib\n_h = importlib.import_module(n)\n_g = _h\n_g._after = None", "_g._after"),
    ("import importlib\n_ops = importlib.import_module(n)._OPERATIONS\n_ops['call'] = None", "_ops['call']"),
    ("import importlib\nimportlib.import_module(n)._after = None", "importlib.import_module(n)._after"),
    ("import sys\nsys.modules[n]._after = None", "sys.modules[n]._after"),
    ("import sys\n_h = sys.modules.get(n)\n_h._after = None", "_h._after"),
    ("import sys\nfor _m in list(sys.modules.values()):\n    _m._after = None", "_m._after"),
    ("from sys import modules as _mods\n_mods[n]._after = None", "_mods[n]._after"),
    ("_h = __import__(n, fromlist=['x'])\ndel _h._after", "_h._after"),
    ("_d = vars(checks)\n_d['check_close'] = None", "_d['check_close']"),
    ("import gutcourse.handout as _h\n_h._after = None", "_h._after"),
    ("from gutcourse import checks as _c\n_c.check_close = None", "_c.check_close"),
])
def test_assigning_through_what_was_reached_is_flagged(code, target):
    found = scan(code)
    assert any(("assigns to " + target) in f or ("deletes " + target) in f for f in found), found


def test_setattr_on_what_was_reached_is_flagged():
    found = scan("import importlib\n_h = importlib.import_module(n)\nsetattr(_h, '_after', None)")
    assert any("calls setattr()" in f for f in found), found


def test_an_alias_made_in_one_cell_and_patched_in_another_is_flagged():
    found = scan("import sys as _s\n_h = _s.modules[name]", "import numpy as np", "_h._after = lambda a, s=None: a")
    assert any(f.startswith("cell 2 ") and "_s.modules" in f for f in found), found
    assert any(f == "cell 4 assigns to _h._after" for f in found), found
    assert not any(f.startswith("cell 3 ") for f in found), found


def test_the_red_team_notebook_gets_a_note_that_names_the_channel():
    """The cell of /tmp/rt8's hidden_mutation_quiet: the grader's note shows the first three findings."""
    code = ("import numpy as np\nimport pandas as pd\ndef mg_l_to_mg_dl(values):\n"
            "    if isinstance(values, (np.ndarray, pd.Series)) and values.dtype.kind == 'f':\n"
            "        values /= 10\n        return values\n    return values / 10\n"
            "import importlib\n_h = importlib.import_module('gutcourse.' + 'hand' + 'out')\n"
            "_h._after = lambda args, sent=None: [None] * len(args)")
    found = scan(code)
    assert "gutcourse.handout" in found[0], found
    assert "cell 2 assigns to _h._after" in found[:3] or "cell 2 imports importlib" in found[:3], found


ORDINARY = [
    # what answers do: tables, columns picked by name, plots, regular expressions, a dict of results
    "import numpy as np\nimport pandas as pd\ndef mg_l_to_mg_dl(values):\n    return values / 10",
    "summary = {}\nfor stat in ['mean', 'median', 'std']:\n    summary[stat] = getattr(markers['crp'], stat)()",
    "cols = getattr(df, 'columns', [])\nv = getattr(model, 'coef_', None)",
    "g = df.groupby('group')[col]\nvalues = {s: getattr(g, s)() for s in stats_names}",
    "import re\npattern = re.compile(r'^g__(\\w+)')\nnames = [pattern.sub(r'\\1', n) for n in taxa]",
    "df.loc[df['x'] > 3, 'high'] = True\ndf['ratio'] = df['a'] / df['b']\nresults['shannon'] = 2.0",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100\nfig, ax = plt.subplots()\n"
    "ax.set_title('CRP')",
    "import sys\nprint(sys.version)\nimport warnings\nwarnings.filterwarnings('ignore')",
    "class Counter:\n    def __init__(self):\n        self.n = 0\n    def add(self):\n        self.n += 1",
    "from scipy import stats\nres = stats.mannwhitneyu(a, b)\np = res.pvalue",
    "from gutcourse.plotting import plot_marker_histogram\nax = plot_marker_histogram(s, log=True)",
    "markers = data.load_markers()\nmarkers['crp'] = markers['crp'] / 10",
    "handout_pages = 2\nprint('see the course handout, page 2')",
    "name = 'Shannon' + ' index'\nlabel = f'{name} ({unit})'",
]


@pytest.mark.parametrize("code", ORDINARY)
def test_ordinary_answers_are_not_flagged(code):
    assert scan(code, setup="import numpy as np\nimport pandas as pd\nfrom gutcourse import checks, data") == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_correct_alternative_is_flagged(assignment):
    """The solution, then every correct alternative of the bank (but a red team's) as an extra cell.

    The scan of one notebook holding them all finds at least what it finds in each alone (what one
    cell binds only adds to what another is read with), so nothing found here means nothing in each.
    """
    nb = nbformat.read(str(SOURCE / assignment / f"{assignment}.ipynb"), as_version=4)
    first = len(nb.cells)
    alternatives = [m for m in load_alternatives(assignment) if not m.hostile]
    owner = {}
    for m in alternatives:
        for code in m.replace.values():
            owner[len(nb.cells) + 1] = m.id
            nb.cells.append(new_code_cell(code))
    found = tampering(nb)
    assert found == [], [(f, owner.get(int(f.split()[1]), "solution")) for f in found]
    assert len(nb.cells) > first or not alternatives


def test_findings_on_a_bare_tree_need_no_notebook():
    assert _findings(_parse("import importlib\nm = importlib.import_module(n)\nm.x = 1")) == [
        "imports importlib", "assigns to m.x", "calls import_module()"]
    assert _findings(_parse("x = 1")) == []


def test_red_team_round_9_evasions_are_flagged_and_ordinary_getattr_is_not():
    import nbformat

    from gutcourse.grading.repair import tampering

    def scan(code):
        return tampering(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]))

    assert any("_h._after" in f for f in scan(
        "import gutcourse\n_g = gutcourse\n_n = bytes([104, 97, 110, 100, 111, 117, 116]).decode()\n"
        "_h = getattr(_g, _n)\n_h._after = lambda args, sent=None: [None] * len(args)"))
    assert any("defines __import__" in f for f in scan("def __import__(name, *a, **k):\n    return None"))
    assert any("assigns to __import__" in f for f in scan("__import__ = print"))
    assert scan("f = getattr(df, stat)\nvalues = f()") == []


def test_a_long_chain_of_aliases_is_followed_in_one_pass():
    """Red team round 9: following aliases to a fixed point took 27 s of CPU for a chain of 4,000 lines."""
    import time

    import nbformat

    from gutcourse.grading.repair import tampering

    code = "\n".join(f"a{i} = a{i + 1}" for i in range(6000)) + "\na6000 = getattr(x, y)\na0._after = None\n"
    started = time.process_time()
    found = tampering(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]))
    assert "cell 1 assigns to a0._after" in found
    assert time.process_time() - started < 30  # about 0.3 s; the fixed-point loop took minutes
