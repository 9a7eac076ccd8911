"""Comparisons for nbgrader test cells that a student's own code cannot bend.

Test cells in the course's assignments compare answers with these functions
instead of ``numpy.isclose``, ``math.isclose`` or ``pandas.testing``.
A student who redefines any of those (or ``builtins.abs``) after the notebook's
locked first cell has imported this module gains nothing: every function and
builtin used here is captured when this module is first imported, and the
arithmetic itself is done on plain Python floats.

Messages say what is wrong (type, length, labels, how many values are off)
and never print the expected values.

The module holds no answers; it only compares.
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
from copy import deepcopy as _deepcopy

__all__ = [
    "close",
    "check_type",
    "check_close",
    "check_values",
    "check_labels",
    "check_series",
    "fail",
    "call_each",
    "method",
    "library_calls",
]

# Captured at import, before any student code runs (the locked setup cell imports us).
_abs = _builtins.abs
_float = _builtins.float
_len = _builtins.len
_list = _builtins.list
_isinstance = _builtins.isinstance
_str = _builtins.str
_type = _builtins.type
_zip = _builtins.zip
_enumerate = _builtins.enumerate
_sorted = _builtins.sorted
_set = _builtins.set
_tuple = _builtins.tuple
_hasattr = _builtins.hasattr
_getattr = _builtins.getattr
_id = _builtins.id
_isnan = _math.isnan
_isinf = _math.isinf
_AssertionError = _builtins.AssertionError


def _as_float_list(values) -> list[float]:
    """Flatten a scalar, sequence, numpy array or pandas object to a list of floats."""
    if _hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if _hasattr(values, "ravel") and _hasattr(values, "tolist"):
        values = values.ravel().tolist()
    if _isinstance(values, (int, float)) or not _hasattr(values, "__iter__"):
        return [_float(values)]
    return [_float(v) for v in values]


def _close_scalar(a: float, b: float, rtol: float, atol: float) -> bool:
    if _isnan(a) or _isnan(b):
        return _isnan(a) and _isnan(b)
    if _isinf(a) or _isinf(b):
        return a == b
    diff = a - b
    if diff < 0:
        diff = -diff
    scale = b if b >= 0 else -b
    return diff <= atol + rtol * scale


def close(actual, expected, *, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when ``actual`` equals ``expected`` within tolerance, element by element.

    Works on numbers, sequences, numpy arrays and pandas objects (values only,
    in order). NaN equals NaN. Returns False (never raises) when ``actual``
    cannot be read as numbers or has the wrong length.
    """
    try:
        a = _as_float_list(actual)
        b = _as_float_list(expected)
    except (TypeError, ValueError):
        return False
    if _len(a) != _len(b):
        return False
    for x, y in _zip(a, b):
        if not _close_scalar(x, y, rtol, atol):
            return False
    return True


def fail(message: str) -> None:
    """Fail the test cell with ``message`` (an AssertionError nbgrader scores as 0)."""
    raise _AssertionError(message)


def _type_name(obj) -> str:
    t = _type(obj)
    module = _getattr(t, "__module__", "")
    if module.startswith("pandas"):
        return "pandas " + t.__name__
    if module.startswith("numpy"):
        return "numpy " + t.__name__
    return t.__name__


def check_type(value, types, name: str, *, what: str | None = None) -> None:
    """Fail unless ``value`` is an instance of ``types``.

    ``what`` is how the expected type is named to the student
    (for example "a pandas Series"); it defaults to the type names.
    """
    if not _isinstance(value, types):
        if what is None:
            names = types if _isinstance(types, tuple) else (types,)
            what = " or ".join(_getattr(t, "__name__", _str(t)) for t in names)
        fail(f"`{name}` should be {what}, but it is a {_type_name(value)}.")


def check_close(actual, expected, name: str, *, rtol: float = 1e-6, atol: float = 1e-9,
                hint: str = "") -> None:
    """Fail unless the number ``actual`` is within tolerance of ``expected``."""
    try:
        a = _float(actual)
    except (TypeError, ValueError):
        fail(f"`{name}` should be a number, but it is a {_type_name(actual)}.")
    if _isnan(a):
        fail(f"`{name}` is NaN (not a number).{' ' + hint if hint else ''}")
    if not _close_scalar(a, _float(expected), rtol, atol):
        fail(f"`{name}` is not the expected value.{' ' + hint if hint else ''}")


def check_values(actual, expected, name: str, *, rtol: float = 1e-6, atol: float = 1e-9,
                 hint: str = "", labels=None) -> None:
    """Fail unless the values of ``actual`` match ``expected`` in order, within tolerance.

    The message says how many values are off and, when ``labels`` is given,
    the label of the first one, so a student knows where to look.
    """
    try:
        a = _as_float_list(actual)
    except (TypeError, ValueError):
        fail(f"`{name}` should contain only numbers.")
    b = _as_float_list(expected)
    if _len(a) != _len(b):
        fail(f"`{name}` should have {_len(b)} values, but it has {_len(a)}.")
    wrong = [i for i, (x, y) in _enumerate(_zip(a, b)) if not _close_scalar(x, y, rtol, atol)]
    if wrong:
        where = ""
        if labels is not None:
            where = f" (first: {_list(labels)[wrong[0]]})"
        fail(f"{_len(wrong)} of {_len(b)} values of `{name}` are not correct{where}."
             f"{' ' + hint if hint else ''}")


def check_labels(actual, expected, name: str, *, what: str = "index") -> None:
    """Fail unless the labels ``actual`` (an index or list) equal ``expected``, in order."""
    a = [_str(x) for x in _list(actual)]
    b = [_str(x) for x in _list(expected)]
    if a == b:
        return
    if _sorted(a) == _sorted(b):
        fail(f"`{name}` has the right {what} labels but in a different order.")
    missing = [x for x in b if x not in _set(a)]
    extra = [x for x in a if x not in _set(b)]
    parts = []
    if missing:
        parts.append(f"{_len(missing)} missing (first: {missing[0]})")
    if extra:
        parts.append(f"{_len(extra)} unexpected (first: {extra[0]})")
    fail(f"`{name}` does not have the expected {what} labels: " + "; ".join(parts) + ".")


def check_series(actual, expected, name: str, *, rtol: float = 1e-6, atol: float = 1e-9,
                 hint: str = "", check_order: bool = False) -> None:
    """Check a pandas Series answer coarse to fine: type, labels, then values.

    ``expected`` is a Series. Unless ``check_order`` is set, ``actual`` is compared
    after aligning on ``expected``'s index, so a correct answer in another order passes.
    """
    import pandas as pd

    check_type(actual, pd.Series, name, what="a pandas Series")
    if _len(actual) != _len(expected):
        fail(f"`{name}` should have {_len(expected)} entries, but it has {_len(actual)}.")
    if check_order:
        check_labels(actual.index, expected.index, name)
        aligned = actual
    else:
        if _sorted(_str(x) for x in actual.index) != _sorted(_str(x) for x in expected.index):
            check_labels(actual.index, expected.index, name)
        actual_by_label = {_str(k): v for k, v in _zip(actual.index, actual.tolist())}
        aligned = [actual_by_label[_str(k)] for k in expected.index]
    check_values(aligned, expected, name, rtol=rtol, atol=atol, hint=hint,
                 labels=_list(expected.index))


def call_each(function, calls) -> list:
    """``function`` called on every ``(args, kwargs)`` pair of ``calls``, in order: the list of what it returned.

    In a kernel this is ``[function(*args, **kwargs) for args, kwargs in calls]``, and the first
    exception stops the calls. When the tests are judged outside the kernel (``docs/authoring.md``),
    the student's function runs in the kernel on all the calls in one request instead of one request
    each, so a test that calls it hundreds of times stays fast. Give each call its own arguments
    (copies) when the function might change them in place.
    """
    each = _getattr(function, "_call_each", None)
    if _type(function).__name__ == "StudentFunction" and callable(each):
        return each(calls)
    # Each result as it was when its call returned, as the grader reads it: a function that returns
    # one object it changes at every call must not look as if every call returned the last result.
    return [_snapshot(function(*args, **kwargs)) for args, kwargs in calls]


def method(obj, name: str, *args, **kwargs):
    """``obj.name(*args, **kwargs)``: in the student's kernel when ``obj`` came from it.

    In a kernel this is the plain method call. When the tests are judged outside the kernel
    (``docs/authoring.md``), a model a student's function returned arrives in the grader as a
    copy that can be read (its steps, parameters and fitted values) but not fitted or asked to
    predict: ``checks.method(model, "fit", X, y)`` runs that in the kernel and brings the result
    back, so a student's settings (a huge network, a million iterations) cost the kernel's time
    limit, not the grader's. A model the test made itself is the grader's own and runs where it is.
    """
    origin = None
    try:
        origin = object.__getattribute__(obj, "__dict__").get("_handout_origin")
    except (AttributeError, TypeError):
        pass
    referee = origin[0] if _type(origin) is _tuple and _len(origin) == 3 else None
    if referee is not None and _type(referee).__name__ == "Referee":
        return referee.method(obj, name, args, kwargs)
    return _getattr(obj, name)(*args, **kwargs)


def _snapshot(value):
    try:
        return _deepcopy(value)
    except Exception:  # an object that cannot be copied is kept as it is
        return value


def library_calls(function, *, banned_modules=(), banned=(), skip=(), probe=None) -> list[str]:
    """The names of banned library objects ``function`` reaches, for "by hand" rules.

    The objects the function reaches (through aliases, modules, partials and the notebook's own
    functions) are listed by ``gutcourse.handout.reach_graph``: in the grader's kernel when the
    function is the student's, handed out as data. An object is banned when its module is one of
    ``banned_modules`` or inside one (``"scipy.spatial"`` covers ``scipy.spatial.distance``), or when
    it is one of ``banned``. ``skip`` lists functions not followed (say, the student's own ``shannon``
    that ``pielou`` may call).

    With ``probe`` (a tuple of arguments), the function is also called on it with a profiler
    watching (``gutcourse.handout.watch_call``, in the kernel for a student's function): a banned
    function reached in ways no name shows (``importlib``, ``getattr`` with a built name, ``eval``, a
    default argument, a callable in a dict) is found when it runs. Names found by reading come first.
    """
    if function is None:
        return []
    reach = _getattr(function, "_reach_graph", None)
    if _type(function).__name__ == "StudentFunction" and callable(reach):
        graph = reach(skip)
    else:
        from gutcourse.handout import reach_graph

        graph = reach_graph(function, skip)
    nodes = graph["nodes"]
    banned_quals = _set()
    for b in banned:
        # By its public name, and by the code that runs (under any decorator): what a profiler sees.
        while True:
            banned_quals.add(f"{_getattr(b, '__module__', None)}.{_getattr(b, '__qualname__', '')}")
            inner = _getattr(b, "__wrapped__", None)
            if inner is None:
                break
            b = inner
        code, scope = _getattr(b, "__code__", None), _getattr(b, "__globals__", None)
        if code is not None and scope is not None:  # the innermost function, not a decorator's shared code
            banned_quals.add(f"{scope.get('__name__')}.{code.co_qualname}")
    found, seen = [], _set()

    def is_banned(node) -> bool:
        module = _str(node["module"])
        return node["qual"] in banned_quals or any(module == b or module.startswith(b + ".") for b in banned_modules)

    explored = _set()  # (node, depth, names): a graph whose modules point at each other is walked once

    def look(i, names, depth):
        key = (i, depth, _id(names))
        if key in explored:
            return
        explored.add(key)
        node = nodes[i]
        if node["skip"]:
            return
        if is_banned(node):
            found.append(node["name"])
        elif node["kind"] == "partial":
            look(node["func"], names, depth)
        elif node["kind"] == "module" and depth < 3:
            for attr in names:
                j = node["attrs"].get(attr)
                if j is not None and j != i:
                    look(j, names, depth + 1)
        elif node["kind"] == "function":
            visit(i)

    def visit(i):
        if i in seen:
            return
        seen.add(i)
        names = nodes[i]["names"]
        for name in names:
            j = nodes[i]["edges"].get(name)
            if j is not None:
                look(j, names, 0)

    if nodes[0]["kind"] == "function":
        visit(0)
    else:
        look(0, [], 0)
    if found or probe is None or not callable(function):
        return _sorted(_set(found))
    if _type(function).__name__ == "StudentFunction" and callable(_getattr(function, "_watch", None)):
        return function._watch(_tuple(probe), banned_modules, _sorted(banned_quals), skip)
    from gutcourse.handout import watch_call

    return watch_call(function, _tuple(probe), banned_modules, banned_quals, skip)
