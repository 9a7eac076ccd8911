"""Answers handed out of a grading kernel as plain data, and read back safely.

When the course grades a notebook, its test cells do not run in the student's kernel.
They run in the grader's own process (``gutcourse.grading.referee``), which asks the
kernel, through this module, for the value of a name or for the result of calling one
of the student's functions on the test's inputs. The kernel answers with plain data
(numbers, strings, lists, tables, and what a plot draws), never with objects.

The same code encodes on both sides; ``decode`` builds only known, inert types
(Python scalars and containers, numpy arrays, pandas objects, a drawing rebuilt from
its data) and refuses anything else, so a hostile kernel can send wrong answers but
cannot run code in the grader.

This module holds no answers and no expected values: it only moves data.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import re
import sys

#: Bounds on what one hand-out may hold (elements in all, nesting, text).
MAX_ITEMS = 2_000_000
MAX_DEPTH = 24
MAX_TEXT = 1_000_000
#: Bytes one decoded array may take (numpy allocates by the widest entry of a text array).
MAX_BYTES = 256 << 20
#: Most artists of each kind one drawing may hold.
MAX_PATCHES, MAX_LINES, MAX_COLLECTIONS = 2000, 2000, 200
#: Characters one answer to the grader may take (its messages are capped at 64 MB, with quoting on top).
MAX_REPLY_TEXT = 40 << 20

_SCALAR_KINDS = "biufcUSMm"  # numpy dtype kinds stored as lists of values
#: pandas extension types a hand-out may use (anything else is refused, not looked up).
_EXTENSION_DTYPES = re.compile(r"^(str|string(\[(python|pyarrow)\])?|U?Int(8|16|32|64)|Float(32|64)|boolean"
                               # A zone by name (UTC, Europe/Paris), never a path ("dateutil//etc/x" would open a file)
                               r"|datetime64\[(ns|us|ms|s), (?=[^\]]{1,64}\])[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}\])$")


class HandoutError(ValueError):
    """A hand-out that cannot be read: malformed, too large, or of a kind the grader does not accept."""


# ----------------------------------------------------------------------------- encoding
class _Budget:
    def __init__(self, limit: int = MAX_ITEMS):
        self.left = limit
        self.models = 0
        self.bytes = 0

    def model(self) -> None:
        """One more model read or written (a model shared by many steps counts once per step)."""
        self.models += 1
        if self.models > MAX_MODELS:
            raise HandoutError(f"more than {MAX_MODELS} models")

    def allocate(self, n: int) -> None:
        """Arrays of one hand-out together stay under MAX_BYTES (a wide text type costs its width per value)."""
        self.bytes += n
        if self.bytes > MAX_BYTES:
            raise HandoutError(f"arrays of more than {MAX_BYTES >> 20} MB in all")

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise HandoutError(f"more than {MAX_ITEMS:,} values")


def _float(v: float):
    if math.isnan(v):
        return {"t": "float", "v": "nan"}
    if math.isinf(v):
        return {"t": "float", "v": "inf" if v > 0 else "-inf"}
    return v


def _plain_list(values) -> list:
    out = []
    for v in values:
        if isinstance(v, float):
            out.append(_float(v))
        elif isinstance(v, complex):
            out.append({"t": "complex", "re": _float(v.real), "im": _float(v.imag)})
        elif isinstance(v, bytes):
            out.append({"t": "bytes", "v": v.decode("latin-1")})
        else:
            out.append(v)
    return out


def encode(value, refs: dict | None = None, *, _depth: int = 0, _budget: _Budget | None = None):
    """``value`` as JSON-ready data. Callables become references kept in ``refs`` (id -> object)."""
    budget = _budget or _Budget()
    budget.take(1)
    if _depth > MAX_DEPTH:
        raise HandoutError(f"nested more than {MAX_DEPTH} levels deep")
    deeper = {"refs": refs, "_depth": _depth + 1, "_budget": budget}
    if value is None or isinstance(value, (bool, str)) and type(value) in (bool, str):
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise HandoutError(f"a text longer than {MAX_TEXT:,} characters")
        return value
    if type(value) is int:
        return value if abs(value) < 2 ** 63 else {"t": "bigint", "v": str(value)}
    if type(value) is float:
        return _float(value)
    if type(value) is complex:
        return {"t": "complex", "re": _float(value.real), "im": _float(value.imag)}
    if type(value) is bytes:
        return {"t": "bytes", "v": value.decode("latin-1")}
    if type(value) in (list, tuple, set, frozenset):
        kind = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}[type(value)]
        items = list(value)
        if kind in ("set", "frozenset"):
            try:
                items = sorted(items)
            except TypeError:
                pass
        return {"t": kind, "v": [encode(v, **deeper) for v in items]}
    if type(value) is dict:
        return {"t": "dict", "k": [encode(k, **deeper) for k in value], "v": [encode(v, **deeper) for v in value.values()]}
    module = type(value).__module__ or ""
    top = module.split(".")[0]
    if top == "numpy":
        return _encode_numpy(value, deeper, budget)
    if top == "pandas":
        encoded = _encode_pandas(value, deeper, budget)
        if encoded is not None:
            return encoded
    if top == "skbio":
        encoded = _encode_skbio(value, deeper)
        if encoded is not None:
            return encoded
    if top == "matplotlib":
        encoded = _encode_drawing(value, deeper)
        if encoded is not None:
            return encoded
    if isinstance(value, BaseException):
        return {"t": "exception", "type": type(value).__name__, "message": str(value)[:MAX_TEXT]}
    if refs is not None and refs is not _refs and _origin(value) is not None:
        # The grader sends back an object that came from the kernel: as the kernel's own, while unchanged.
        origin = _origin(value)
        if origin[1] is not None and origin[2] == fingerprint(value):
            key = str(len(refs) + 1)
            refs[key] = value
            return {"t": "function", "ref": key, "name": type(value).__name__}
    if _is_estimator(value):
        encoded = _encode_estimator(value, refs, deeper)
        if encoded is not None:
            return encoded
    if callable(value) and refs is not None and not isinstance(value, type):
        return {"t": "function", "ref": _keep(value, refs),
                "name": str(getattr(value, "__name__", type(value).__name__))}
    # Subclasses of the plain types (a bool subclass, a str subclass, IntEnum...) travel as their base value.
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return encode(base(value), **deeper)
    opaque = {"t": "opaque", "type": type(value).__name__, "module": module}
    if refs is _refs:  # the kernel keeps it, so that a test can hand it back to the student's code
        opaque["ref"] = _keep(value, refs)
    return opaque


def _keep(value, refs: dict) -> str:
    """The reference under which ``refs`` keeps ``value`` (the kernel's table gives one object one key)."""
    if refs is _refs:
        key = _ref_keys.get(id(value))
        if key is not None and _refs.get(key) is value:
            return key
    key = str(len(refs) + 1)
    while key in refs:  # never another object's key, whatever was taken out of the table
        key = str(int(key) + 1)
    refs[key] = value
    if refs is _refs:
        _ref_keys[id(value)] = key
    return key


# ----------------------------------------------------------------------------- models (scikit-learn)
#: Libraries whose functions travel by name inside a model's parameters (``score_func=f_classif``).
_LIBRARIES = ("sklearn", "numpy", "scipy")
#: The package's own model classes that travel like scikit-learn's (runtime code, no answers).
_OWN_MODELS = ("gutcourse.recording",)
#: Methods of a model from the kernel that compute: the grader runs them in the kernel
#: (``gutcourse.checks.method``), never on its own copy, where a student's settings would cost the grader.
COMPUTING_METHODS = ("fit", "partial_fit", "fit_transform", "fit_predict", "predict", "predict_proba",
                     "predict_log_proba", "decision_function", "score", "transform", "inverse_transform")


def _is_estimator(value) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(value, base.BaseEstimator)


def _origin(value):
    """``(owner, kernel reference, fingerprint)`` of an object rebuilt from the kernel; else None."""
    try:
        origin = object.__getattribute__(value, "__dict__").get("_handout_origin")
    except (AttributeError, TypeError):
        return None
    return origin if type(origin) is tuple and len(origin) == 3 else None


def fingerprint(value) -> str:
    """What an object rebuilt from the kernel holds now, to tell whether a test changed it."""
    if not _is_estimator(value):
        return "opaque"
    try:
        return json.dumps(_encode_estimator(value, None, {"refs": None, "_depth": 0, "_budget": _Budget()}),
                          sort_keys=True, allow_nan=False, default=str)
    except (HandoutError, TypeError, ValueError):
        return "unreadable"


def _class_name(cls) -> str | None:
    module, qual = str(getattr(cls, "__module__", "") or ""), str(getattr(cls, "__qualname__", ""))
    if not (module.split(".")[0] == "sklearn" or module in _OWN_MODELS) or not qual.isidentifier():
        return None
    return f"{module}:{qual}" if getattr(sys.modules.get(module), qual, None) is cls else None


def _library_function_name(value) -> str | None:
    if isinstance(value, type) or not callable(value):
        return None
    module, qual = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if type(module) is not str or type(qual) is not str or module.split(".")[0] not in _LIBRARIES \
            or not qual.isidentifier():
        return None
    return f"{module}:{qual}" if getattr(sys.modules.get(module), qual, None) is value else None


def _split_name(name, what: str, tops: tuple) -> tuple[str, str]:
    module, _, qual = _text(name).partition(":")
    parts = module.split(".")
    if not (parts[0] in tops or module in _OWN_MODELS) or not qual.isidentifier() \
            or not all(p.isidentifier() and "test" not in p.lower() for p in parts):
        raise HandoutError(f"a {what} from outside the allowed libraries ({module[:80]})")
    return module, qual


def _resolve(name: str, what: str, tops: tuple, *, importing: bool):
    """The object ``module:qualname`` names, from one of the allowed libraries only; None where its
    module is not imported here and ``importing`` is off (the grader never imports a module a kernel names)."""
    module, qual = _split_name(name, what, tops)
    if module not in sys.modules:
        if not importing:
            return None
        try:
            importlib.import_module(module)
        except BaseException:  # an import that fails, or exits: the grader sent the name, the kernel says no
            raise HandoutError(f"a {what} from an unknown module ({module[:80]})") from None
    found = getattr(sys.modules.get(module), qual, None)
    if found is None:
        raise HandoutError(f"an unknown {what} ({module[:80]}.{qual[:80]})")
    return found


def _encode_estimator(value, refs, deeper):
    """A scikit-learn model as data: its class, its parameters and what fitting stored in it."""
    name = _class_name(type(value))
    if name is None:
        return None
    deeper["_budget"].model()
    params = value.get_params(deep=False)
    if type(params) is not dict:
        return None
    deeper = {**deeper, "refs": refs}
    params_data = {}
    for key, v in params.items():
        library = v.name if type(v) is LibraryFunctionCopy else _library_function_name(v)
        params_data[str(key)] = {"t": "libfunc", "name": library} if library else encode(v, **deeper)
    fitted = {k: v for k, v in vars(value).items()
              if isinstance(k, str) and k.endswith("_") and not k.startswith("_") and k.isidentifier()}
    data = {"t": "estimator", "class": name, "params": params_data, "fitted": encode(fitted, **deeper)}
    state = getattr(type(value), "_handout_state", None)
    if state is not None and type(value).__module__ in _OWN_MODELS:
        data["state"] = encode(value._handout_state(), **deeper)
    if refs is _refs:
        data["ref"] = _keep(value, refs)
    return data


class LibraryFunctionCopy:
    """The grader's stand-in for a library function among the parameters of a student's model.

    It has the function's names but never runs, and the grader does not even look the function
    up: whatever a student's model would do with it (a ``FunctionTransformer`` chaining library
    calls into code of the student's choosing) is done in the kernel, never in the grader, even
    where a test copies the model with ``clone``.
    """

    def __init__(self, name: str):
        self.name = name
        module, _, qual = name.partition(":")
        self.__module__ = module
        self.__name__ = self.__qualname__ = qual

    def __repr__(self) -> str:
        return f"<{self.__module__}.{self.__name__} (runs only in the kernel)>"

    def __call__(self, *args, **kwargs):
        raise HandoutError(f"{self.__name__} from a student's model runs only in the kernel: "
                           f"use checks.method(model, ...)")


def _library_function(data, kernel: bool):
    name = _text(data["name"])
    _split_name(name, "library function", _LIBRARIES)
    if not kernel:
        return LibraryFunctionCopy(name)
    found = _resolve(name, "library function", _LIBRARIES, importing=True)
    if isinstance(found, type) or not callable(found):
        raise HandoutError("a library function that is not a function")
    return found


#: Most models one hand-out may hold (a model's steps are models too).
MAX_MODELS = 200


def _decode_estimator(data, again):
    """A model rebuilt from its class, parameters and fitted values.

    In the grader (``kernel`` off) a class whose module the grader has not imported comes back
    as a stand-in with its type's name (the grader imports nothing a kernel names), and a
    model's own record (``state``) is never restored: only the test's own recording model
    takes its record back, when its call returns (``gutcourse.grading.referee``).
    """
    kernel = again.get("kernel") is True
    again["_budget"].model()
    cls = _resolve(data["class"], "model class", ("sklearn",), importing=kernel)
    if cls is None:
        module, qual = _split_name(data["class"], "model class", ("sklearn",))
        return _opaque(qual, module)
    base = sys.modules.get("sklearn.base")
    if not (isinstance(cls, type) and base is not None and issubclass(cls, base.BaseEstimator)):
        raise HandoutError("a model whose class is not a scikit-learn estimator")
    params_data = data["params"]
    if type(params_data) is not dict:
        raise HandoutError("a model with malformed parameters")
    # A library function travels only as a model's parameter (``score_func=f_classif``), nowhere else.
    params = {_text(k): _library_function(v, kernel) if type(v) is dict and v.get("t") == "libfunc"
              else decode(v, **again) for k, v in params_data.items()}
    own = cls.__module__ in _OWN_MODELS
    if own and not all(type(v) in (str, int, float, bool, type(None)) and (type(v) is not str or len(v) <= 100)
                       for v in params.values()):
        raise HandoutError("a recording model with parameters that are not short plain values")
    fitted = decode(data.get("fitted", {"t": "dict", "k": [], "v": []}), **again)
    if type(fitted) is not dict:
        raise HandoutError("a model with malformed fitted values")
    model = cls(**params)
    for key, v in fitted.items():
        if not (type(key) is str and key.isidentifier() and key.endswith("_") and not key.startswith("_")):
            raise HandoutError("a model with a malformed fitted value")
        setattr(model, key, v)
    if kernel and "state" in data and own:
        model._handout_restore(decode(data["state"], **again))
    return model


def _encode_numpy(value, deeper, budget):
    import numpy as np

    if isinstance(value, np.ndarray):
        budget.take(int(value.size))
        dtype = value.dtype
        if dtype.kind in _SCALAR_KINDS and dtype.names is None:
            flat = value.ravel()
            if dtype.kind in "Mm":
                data = [None if np.isnat(v) else int(v.view("i8")) for v in flat]
            elif dtype.kind in "biu" or dtype.kind == "f" and bool(np.isfinite(flat).all()):
                data = flat.tolist()  # no NaN or infinity to spell out
            else:
                data = _plain_list(flat.tolist())
            return {"t": "ndarray", "dtype": dtype.str if dtype.kind not in "Mm" else str(dtype),
                    "shape": list(value.shape), "v": data}
        return {"t": "ndarray", "dtype": "O", "shape": list(value.shape),
                "v": [encode(v, **deeper) for v in value.ravel().tolist()]}
    if isinstance(value, np.generic):
        dtype = value.dtype
        if dtype.kind in "biufc" and dtype.names is None:
            v = value.item()
            return {"t": "npscalar", "dtype": dtype.str, "v": _plain_list([v])[0]}
        if dtype.kind in "US":
            return encode(value.item(), **deeper)
        if dtype.kind in "Mm":
            return {"t": "npscalar", "dtype": str(dtype), "v": None if np.isnat(value) else int(value.view("i8"))}
    return {"t": "opaque", "type": type(value).__name__, "module": type(value).__module__}


def _pandas_values(values, deeper, budget):
    """A pandas or numpy column as its dtype's name and its values."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if type(dtype).__name__ == "NumpyEADtype":  # a plain numpy column seen through pandas' .array
        dtype = dtype.numpy_dtype
    name = str(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return {"dtype": "category", "categories": encode(dtype.categories.to_numpy(), **deeper),
                "ordered": bool(dtype.ordered), "codes": encode(np.asarray(values.codes, dtype="i8"), **deeper)}
    if isinstance(dtype, np.dtype):
        return {"dtype": name, "v": encode(np.asarray(values), **deeper)}
    # Extension dtypes (str, Int64, boolean, datetime with a zone...): values as objects, missing as None.
    items = [None if v is pd.NA or v is None or (isinstance(v, float) and math.isnan(v)) else v
             for v in np.asarray(values, dtype=object).ravel().tolist()]
    budget.take(len(items))
    if items and all(isinstance(v, pd.Timestamp) or v is None for v in items):
        items = [None if v is None else v.isoformat() for v in items]
        return {"dtype": name, "timestamps": items}
    return {"dtype": name, "objects": [encode(v, **deeper) for v in items]}


def _encode_pandas(value, deeper, budget):
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.MultiIndex):
        return {"t": "multiindex", "names": [encode(n, **deeper) for n in value.names],
                "levels": [_pandas_values(value.get_level_values(i), deeper, budget) for i in range(value.nlevels)]}
    if isinstance(value, pd.Index):
        return {"t": "index", "name": encode(value.name, **deeper), "range": isinstance(value, pd.RangeIndex),
                **_pandas_values(value.array if not isinstance(value.dtype, pd.CategoricalDtype) else value.values,
                                 deeper, budget)}
    if isinstance(value, pd.Series):
        return {"t": "series", "name": encode(value.name, **deeper), "index": encode(value.index, **deeper),
                **_pandas_values(value.array if not isinstance(value.dtype, pd.CategoricalDtype) else value.values,
                                 deeper, budget)}
    if isinstance(value, pd.DataFrame):
        try:
            dtypes = list(value._mgr.get_dtypes())  # as value.dtypes, without building a Series of them
        except AttributeError:
            dtypes = list(value.dtypes)
        kinds = set(dtypes)
        if value.shape[1] > 1 and len(kinds) == 1 and isinstance(dtypes[0], np.dtype) and dtypes[0].kind in "biuf":
            # A table of one numeric type (counts, shares) travels as one block: much faster when it is wide.
            return {"t": "frame", "index": encode(value.index, **deeper), "columns": encode(value.columns, **deeper),
                    "block": encode(value.to_numpy(), **deeper)}
        # Column by position (labels may repeat); items() is much cheaper than .iloc[:, i] per column.
        return {"t": "frame", "index": encode(value.index, **deeper), "columns": encode(value.columns, **deeper),
                "data": [_pandas_values(column.array if not isinstance(dtype, pd.CategoricalDtype) else column.values,
                                        deeper, budget)
                         for (_, column), dtype in zip(value.items(), dtypes)]}
    if value is pd.NA:
        return {"t": "na"}
    if isinstance(value, pd.Timestamp):
        return {"t": "timestamp", "v": None if value is pd.NaT else value.isoformat()}
    return None


def _encode_skbio(value, deeper):
    """scikit-bio's distance matrices, ordinations and trees, as their data."""
    from skbio import OrdinationResults, TreeNode
    from skbio.stats.distance import DissimilarityMatrix, DistanceMatrix

    if isinstance(value, DissimilarityMatrix):
        return {"t": "skbio_matrix", "distance": isinstance(value, DistanceMatrix),
                "ids": encode(list(value.ids), **deeper), "data": encode(value.data, **deeper)}
    if isinstance(value, OrdinationResults):
        parts = ("eigvals", "samples", "features", "biplot_scores", "sample_constraints", "proportion_explained")
        return {"t": "skbio_ordination", "short": str(value.short_method_name), "long": str(value.long_method_name),
                **{part: encode(getattr(value, part, None), **deeper) for part in parts}}
    if isinstance(value, TreeNode):
        text = str(value)
        if len(text) > MAX_TEXT:
            raise HandoutError("a tree too large")
        return {"t": "skbio_tree", "newick": text}
    return None


def _decode_skbio(data, again):
    import pandas as pd
    from skbio import OrdinationResults, TreeNode
    from skbio.stats.distance import DissimilarityMatrix, DistanceMatrix

    kind = data["t"]
    if kind == "skbio_matrix":
        ids = decode(data["ids"], **again)
        matrix = decode(data["data"], **again)
        if type(ids) is not list or type(matrix).__name__ != "ndarray":
            raise HandoutError("a distance matrix without ids or data")
        return (DistanceMatrix if data["distance"] is True else DissimilarityMatrix)(matrix, ids)
    if kind == "skbio_ordination":
        parts = {part: decode(data[part], **again) for part in
                 ("eigvals", "samples", "features", "biplot_scores", "sample_constraints", "proportion_explained")}
        for part, value in parts.items():
            if value is not None and not isinstance(value, (pd.Series, pd.DataFrame)):
                raise HandoutError(f"an ordination whose {part} is not a table")
        return OrdinationResults(_text(data["short"]), _text(data["long"]), **parts)
    if kind == "skbio_tree":
        return TreeNode.read([_text(data["newick"])])
    raise HandoutError(f"an entry of unknown kind {kind!r}")


# ----------------------------------------------------------------------------- drawings
def _colors(values) -> list:
    import numpy as np

    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        return []
    return _plain_list(array.ravel().tolist())


def _encode_drawing(value, deeper):
    """What an Axes draws, as data: enough to rebuild an Axes that answers the same questions."""
    import matplotlib.axes
    import matplotlib.figure

    if isinstance(value, matplotlib.figure.Figure):
        return {"t": "figure", "axes": [_encode_drawing(ax, deeper) for ax in value.axes[:20]],
                "suptitle": _suptitle(value), "legends": len(value.legends)}
    if not isinstance(value, matplotlib.axes.Axes):
        return None
    return _axes_spec(value)


def _suptitle(fig) -> str:
    try:
        return str(fig.get_suptitle())
    except AttributeError:
        return str(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) is not None else ""


def _xy(values) -> list:
    import numpy as np

    try:
        return _plain_list(np.asarray(values, dtype=float).ravel().tolist())
    except (TypeError, ValueError):
        return []


def _axes_spec(ax) -> dict:
    import matplotlib.colors as mcolors
    import matplotlib.lines as mlines
    import matplotlib.patches as mpatches
    import numpy as np

    for kind, artists, most in (("patches", ax.patches, MAX_PATCHES), ("lines", ax.lines, MAX_LINES),
                                ("collections", ax.collections, MAX_COLLECTIONS)):
        if len(artists) > most:
            raise HandoutError(f"a plot with more than {most} {kind}")
    patches = []
    for patch in ax.patches:
        in_data = patch.get_data_transform() is ax.transData
        entry = {"in_data": in_data, "label": str(patch.get_label())}
        if isinstance(patch, mpatches.Rectangle):
            entry.update(kind="rectangle", x=_xy([patch.get_x()])[0], y=_xy([patch.get_y()])[0],
                         width=_xy([patch.get_width()])[0], height=_xy([patch.get_height()])[0])
        elif isinstance(patch, mpatches.StepPatch):
            values, edges = patch.get_data()[:2]
            entry.update(kind="steps", values=_xy(values), edges=_xy(edges))
        elif isinstance(patch, mpatches.Polygon):
            entry.update(kind="polygon", xy=_xy(patch.get_xy()))
        else:
            entry.update(kind="other")
        patches.append(entry)
    collections = []
    for coll in ax.collections:
        try:
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            faces = coll.get_facecolors()
            edges = coll.get_edgecolors()
        except (TypeError, ValueError):
            continue
        collections.append({"offsets": _xy(offsets) if offsets.ndim == 2 and offsets.shape[1:] == (2,) else [],
                            "faces": _colors(faces), "edges": _colors(edges), "label": str(coll.get_label())})
    lines = []
    for line in ax.lines:
        entry = {"label": str(line.get_label()), "marker": str(line.get_marker()),
                 "linestyle": str(line.get_linestyle())}
        try:
            entry["color"] = list(mcolors.to_rgba(line.get_color()))
            entry["face"] = list(mcolors.to_rgba(line.get_markerfacecolor()))
        except (TypeError, ValueError):
            entry["color"] = entry["face"] = [0.0, 0.0, 0.0, 1.0]
        if isinstance(line, mlines.AxLine):
            xy2 = line.get_xy2()
            entry.update(kind="axline", xy1=_xy(line.get_xy1()), xy2=None if xy2 is None else _xy(xy2),
                         slope=None if line.get_slope() is None else _xy([line.get_slope()])[0])
        else:
            entry.update(kind="line", x=_xy(line.get_xdata()), y=_xy(line.get_ydata()))
        lines.append(entry)
    legend = ax.get_legend()
    figure = ax.figure
    return {
        "t": "axes",
        "xscale": str(ax.get_xscale()), "yscale": str(ax.get_yscale()),
        "xlabel": str(ax.get_xlabel()), "ylabel": str(ax.get_ylabel()), "title": str(ax.get_title()),
        "xlim": _xy(ax.get_xlim()), "ylim": _xy(ax.get_ylim()),
        "patches": patches, "collections": collections, "lines": lines,
        "texts": [str(t.get_text()) for t in ax.texts[:500]],
        "legend": None if legend is None else [str(t.get_text()) for t in legend.get_texts()],
        "suptitle": _suptitle(figure) if figure is not None else "",
        "figure_legends": [[str(t.get_text()) for t in lg.get_texts()] for lg in (figure.legends if figure else [])],
    }


# ----------------------------------------------------------------------------- decoding
class Opaque:
    """Stands for a value of a type that is not handed out as data (its type's name only)."""

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}>"


_opaque_types: dict = {}


#: Most stand-in types kept: a kernel can invent a new type name for every value it hands out.
MAX_OPAQUE_TYPES = 256


def _opaque(name: str, module: str):
    name = str(name)[:100] or "object"
    if not name.isidentifier():
        name = "object"
    key = (name, str(module)[:100])
    if key not in _opaque_types:
        if len(_opaque_types) >= MAX_OPAQUE_TYPES:
            return Opaque()
        _opaque_types[key] = type(name, (Opaque,), {"__module__": key[1] or "builtins"})
    return _opaque_types[key]()


def decode(data, *, function=None, adopt=None, kernel: bool = False, _depth: int = 0,
           _budget: _Budget | None = None):
    """Rebuild a hand-out. ``function(ref, name)`` turns a function reference into a callable;
    ``adopt(ref, obj)`` is given every model or opaque object from the kernel (kept there under
    ``ref``, or None) and returns the object to use for it. ``kernel`` is on only in the kernel,
    for what the grader sends: models there are built with their real library functions."""
    budget = _budget or _Budget()
    budget.take(1)
    if _depth > MAX_DEPTH + 4:
        raise HandoutError("nested too deeply")
    if data is None or type(data) in (bool, int, float):
        return data
    if type(data) is str:
        return data
    again = {"function": function, "adopt": adopt, "kernel": kernel, "_depth": _depth + 1, "_budget": budget}
    if type(data) is not dict or type(data.get("t")) is not str:
        raise HandoutError(f"an entry of type {type(data).__name__}")
    kind = data["t"]
    try:
        if kind == "float":
            return float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[data["v"]])
        if kind == "bigint":
            text = _text(data["v"])
            if len(text) > 4000:
                raise HandoutError("an integer too long")
            return int(text)
        if kind == "complex":
            return complex(_number(decode(data["re"], **again)), _number(decode(data["im"], **again)))
        if kind == "bytes":
            return _text(data["v"]).encode("latin-1")
        if kind in ("list", "tuple", "set", "frozenset"):
            items = [decode(v, **again) for v in _array(data["v"])]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind == "dict":
            keys, values = _array(data["k"]), _array(data["v"])
            if len(keys) != len(values):
                raise HandoutError("a dict with more keys than values")
            return {decode(k, **again): decode(v, **again) for k, v in zip(keys, values)}
        if kind == "exception":
            return Exception(_text(data["message"]))
        if kind == "opaque":
            obj = _opaque(_text(data["type"]), _text(data.get("module", "")))
            return adopt(_text(data["ref"]), obj) if adopt is not None and "ref" in data else obj
        if kind == "estimator":
            # Every model from the kernel is the student's, with or without the reference it came with.
            obj = _decode_estimator(data, again)
            return adopt(_text(data["ref"]) if "ref" in data else None, obj) if adopt is not None else obj
        if kind == "function":
            if function is None:
                raise HandoutError("a function where data was expected")
            return function(_text(data["ref"]), _text(data.get("name", "function")))
        if kind in ("ndarray", "npscalar"):
            return _decode_numpy(data, again, budget)
        if kind in ("index", "multiindex", "series", "frame", "na", "timestamp"):
            return _decode_pandas(data, again, budget)
        if kind in ("skbio_matrix", "skbio_ordination", "skbio_tree"):
            return _decode_skbio(data, again)
        if kind in ("axes", "figure"):
            return rebuild_drawing(data)
    except HandoutError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError) as err:
        raise HandoutError(f"a malformed {kind} ({type(err).__name__}: {str(err)[:200]})") from None
    raise HandoutError(f"an entry of unknown kind {kind[:40]!r}")


def _text(value) -> str:
    if type(value) is not str:
        raise HandoutError("a text field that is not text")
    return value


def _number(value):
    if type(value) not in (int, float):
        raise HandoutError("a number field that is not a number")
    return value


def _array(value) -> list:
    if type(value) is not list:
        raise HandoutError("a list field that is not a list")
    return value


def _plain_values(items: list, budget: _Budget) -> list:
    budget.take(len(items))
    out = []
    for v in items:
        if v is None or type(v) in (bool, int, float, str):
            out.append(v)
        elif type(v) is dict and v.get("t") == "float":
            out.append(decode(v))
        elif type(v) is dict and v.get("t") == "complex":
            out.append(decode(v))
        elif type(v) is dict and v.get("t") == "bytes":
            out.append(decode(v))
        else:
            raise HandoutError("an array value that is not a number or a text")
    return out


def _dtype(text: str):
    import numpy as np

    dtype = np.dtype(_text(text))
    if dtype.kind not in _SCALAR_KINDS + "O" or dtype.names is not None or dtype.subdtype is not None:
        raise HandoutError(f"an array of type {text[:40]!r}")
    return dtype


def _decode_numpy(data, again, budget):
    import numpy as np

    dtype = _dtype(data["dtype"])
    if dtype.itemsize > 4 * MAX_TEXT:
        raise HandoutError("a text type wider than a text may be")
    if data["t"] == "npscalar":
        if dtype.kind in "Mm":
            v = data["v"]
            return dtype.type("NaT") if v is None else np.array([_number(v)], dtype="i8").view(dtype)[0]
        return dtype.type(_plain_values([data["v"]], budget)[0])
    shape = [int(_number(n)) for n in _array(data["shape"])]
    if any(n < 0 for n in shape) or len(shape) > 32:
        raise HandoutError("an array of impossible shape")
    items = _array(data["v"])
    if math.prod(shape) != len(items):
        raise HandoutError("an array whose shape does not match its values")
    if math.prod(shape) * max(dtype.itemsize, 1) > MAX_BYTES or dtype.itemsize > 4 * MAX_TEXT:
        raise HandoutError(f"an array of more than {MAX_BYTES >> 20} MB")
    budget.allocate(math.prod(shape) * max(dtype.itemsize, 1))
    if dtype.kind == "O":
        array = np.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            array[i] = decode(v, **again)
        return array.reshape(shape)
    if dtype.kind in "Mm":
        raw = [np.iinfo("i8").min if v is None else _number(v) for v in items]
        budget.take(len(raw))
        return np.array(raw, dtype="i8").view(dtype).reshape(shape)
    if dtype.kind in "biuf":
        budget.take(len(items))
        if all(type(v) in (int, float) for v in items) if dtype.kind == "f" else \
                all(type(v) in (int, bool) for v in items):
            return np.array(items, dtype=dtype).reshape(shape)
    return np.array(_plain_values(items, budget), dtype=dtype).reshape(shape)


def _decode_values(data, again, budget):
    """The values of a pandas column or index: a numpy array or a pandas extension array."""
    import pandas as pd

    name = _text(data["dtype"])
    if name == "category":
        categories = decode(data["categories"], **again)
        codes = decode(data["codes"], **again)
        return pd.Categorical.from_codes(codes, categories=categories, ordered=bool(data["ordered"]))
    if "v" in data:
        values = decode(data["v"], **again)
        if type(values).__name__ != "ndarray":
            raise HandoutError("column values that are not an array")
        return values
    if not _EXTENSION_DTYPES.match(name):
        raise HandoutError(f"a column of type {name[:40]!r}")
    dtype = _extension_dtype(name)
    if "timestamps" in data:
        items = [None if v is None else pd.Timestamp(_text(v)) for v in _array(data["timestamps"])]
    else:
        items = [decode(v, **again) for v in _array(data["objects"])]
    return pd.array(items, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _extension_dtype(name: str):
    """pandas' dtype named ``name`` (one of _EXTENSION_DTYPES); looked up once, as pandas asks every registered type."""
    import pandas as pd

    return pd.api.types.pandas_dtype(name)


def _decode_pandas(data, again, budget):
    import pandas as pd

    kind = data["t"]
    if kind == "na":
        return pd.NA
    if kind == "timestamp":
        return pd.NaT if data["v"] is None else pd.Timestamp(_text(data["v"]))
    if kind == "multiindex":
        levels = [_decode_values(level, again, budget) for level in _array(data["levels"])]
        names = [decode(n, **again) for n in _array(data["names"])]
        return pd.MultiIndex.from_arrays(levels, names=names)
    if kind == "index":
        values = _decode_values(data, again, budget)
        name = decode(data["name"], **again)
        if data.get("range") is True and len(values) and str(getattr(values, "dtype", "")) == "int64":
            start, step = int(values[0]), (int(values[1]) - int(values[0])) if len(values) > 1 else 1
            if step != 0 and all(int(v) == start + i * step for i, v in enumerate(values)):
                return pd.RangeIndex(start, start + step * len(values), step, name=name)
        return pd.Index(values, name=name, copy=False, tupleize_cols=False)
    if kind == "series":
        index = decode(data["index"], **again)
        values = _decode_values(data, again, budget)
        if len(values) != len(index):
            raise HandoutError("a Series whose index and values differ in length")
        return pd.Series(values, index=index, name=decode(data["name"], **again), copy=False)
    if kind == "frame":
        index = decode(data["index"], **again)
        columns = decode(data["columns"], **again)
        if "block" in data:
            block = decode(data["block"], **again)
            if type(block).__name__ != "ndarray" or block.dtype.kind not in "biuf" or \
                    block.shape != (len(index), len(columns)):
                raise HandoutError("a DataFrame whose block does not match its labels")
            return pd.DataFrame(block, index=index, columns=columns, copy=False)
        arrays = [_decode_values(col, again, budget) for col in _array(data["data"])]
        if len(arrays) != len(columns) or any(len(a) != len(index) for a in arrays):
            raise HandoutError("a DataFrame whose columns and values do not line up")
        frame = pd.DataFrame({i: a for i, a in enumerate(arrays)}, index=index, copy=False)
        frame.columns = columns
        return frame
    raise HandoutError(f"an entry of unknown kind {kind!r}")


def rebuild_drawing(data):
    """A real matplotlib Axes (or Figure) drawing what the hand-out describes (Agg, never shown)."""
    from matplotlib.figure import Figure

    if data["t"] == "figure":
        fig = Figure()
        if len(_array(data["axes"])) > 20:
            raise HandoutError("a figure with more than 20 Axes")
        for spec in _array(data["axes"]):
            _fill_axes(fig.add_subplot(), spec)
        if _text(data.get("suptitle", "")):
            fig.suptitle(data["suptitle"])
        for _ in range(int(_number(data.get("legends", 0))) if data.get("legends") else 0):
            fig.legend(handles=[], labels=[])
        return fig
    fig = Figure()
    ax = fig.add_subplot()
    _fill_axes(ax, data)
    return ax


def _pairs(values, width: int = 2, budget=None) -> list:
    values = _plain_values(_array(values), budget or _Budget())
    if len(values) % width:
        raise HandoutError("coordinates that do not pair up")
    return [values[i:i + width] for i in range(0, len(values), width)]


def _fill_axes(ax, spec) -> None:
    import matplotlib.collections as mcollections
    import matplotlib.lines as mlines
    import matplotlib.patches as mpatches
    import numpy as np

    if spec.get("t") not in ("axes", None):
        raise HandoutError("an Axes that is not an Axes")
    budget = _Budget()
    for kind, most in (("patches", MAX_PATCHES), ("lines", MAX_LINES), ("collections", MAX_COLLECTIONS),
                       ("figure_legends", MAX_COLLECTIONS)):
        if len(_array(spec.get(kind, []))) > most:
            raise HandoutError(f"a plot with more than {most} {kind}")
    ax.set_xlabel(_text(spec["xlabel"]))
    ax.set_ylabel(_text(spec["ylabel"]))
    ax.set_title(_text(spec["title"]))
    for entry in _array(spec["patches"]):
        kind = _text(entry["kind"])
        transform = ax.transData if entry["in_data"] is True else ax.transAxes
        if kind == "rectangle":
            x, y, w, h = (_plain_values([entry[k]], budget)[0] for k in ("x", "y", "width", "height"))
            patch = mpatches.Rectangle((x, y), w, h)
        elif kind == "steps":
            patch = mpatches.StepPatch(_plain_values(_array(entry["values"]), budget),
                                       _plain_values(_array(entry["edges"]), budget))
        elif kind == "polygon":
            patch = mpatches.Polygon(np.array(_pairs(entry["xy"], 2, budget), dtype=float).reshape(-1, 2))
        else:
            patch = mpatches.Circle((0, 0), 0)
        patch.set_label(_text(entry.get("label", "")))
        ax.add_patch(patch)
        patch.set_transform(transform)
    for entry in _array(spec["collections"]):
        offsets = np.array(_pairs(entry["offsets"], 2, budget), dtype=float).reshape(-1, 2)
        faces = np.array(_pairs(entry["faces"], 4, budget), dtype=float).reshape(-1, 4)
        edges = np.array(_pairs(entry["edges"], 4, budget), dtype=float).reshape(-1, 4)
        coll = mcollections.PathCollection([], offsets=offsets, offset_transform=ax.transData,
                                           facecolors=faces, edgecolors=edges)
        coll.set_label(_text(entry.get("label", "")))
        ax.add_collection(coll, autolim=False)
    for entry in _array(spec["lines"]):
        color = _plain_values(_array(entry["color"]), budget)
        face = _plain_values(_array(entry["face"]), budget)
        if entry["kind"] == "axline":
            xy1 = _plain_values(_array(entry["xy1"]), budget)
            xy2 = None if entry["xy2"] is None else _plain_values(_array(entry["xy2"]), budget)
            slope = None if entry["slope"] is None else _plain_values([entry["slope"]], budget)[0]
            line = ax.axline(xy1, xy2, slope=slope, color=color)
        else:
            line = mlines.Line2D(_plain_values(_array(entry["x"]), budget),
                                 _plain_values(_array(entry["y"]), budget), color=color)
            ax.add_line(line)
        line.set_marker(_text(entry["marker"]) if _text(entry["marker"]) in mlines.Line2D.markers else "None")
        line.set_markerfacecolor(face)
        line.set_linestyle(_text(entry["linestyle"]) if _text(entry["linestyle"]) in mlines.Line2D.lineStyles else "-")
        line.set_label(_text(entry.get("label", "")))
    for text in _array(spec.get("texts", []))[:500]:
        ax.text(0, 0, _text(text))
    if spec.get("legend") is not None:
        labels = [_text(t) for t in _array(spec["legend"])[:MAX_LINES]]
        ax.legend(handles=[mlines.Line2D([], [], label=t) for t in labels], labels=labels)
    if _text(spec.get("suptitle", "")):
        ax.figure.suptitle(spec["suptitle"])
    for labels in _array(spec.get("figure_legends", [])):
        labels = [_text(t) for t in _array(labels)[:MAX_LINES]]
        ax.figure.legend(handles=[mlines.Line2D([], [], label=t) for t in labels], labels=labels)
    # Scales last: an axline given by its slope can only be added on linear axes.
    for axis, scale in (("x", spec["xscale"]), ("y", spec["yscale"])):
        scale = _text(scale)
        if scale in ("linear", "log", "symlog", "logit", "asinh"):
            getattr(ax, f"set_{axis}scale")(scale)
    if spec.get("xlim") and spec.get("ylim"):
        ax.set_xlim(*_plain_values(_array(spec["xlim"]), budget)[:2])
        ax.set_ylim(*_plain_values(_array(spec["ylim"]), budget)[:2])


# ----------------------------------------------------------------------------- kernel side
_refs: dict = {}
_ref_keys: dict = {}  # id of an object kept in _refs -> its key


def _namespace() -> dict:
    import __main__

    try:
        return get_ipython().user_ns  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return vars(__main__)


def _reply(payload) -> str:
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    if len(text) > MAX_REPLY_TEXT:  # refused here, rather than dropped on the way and waited for
        return json.dumps({"unreadable": f"an answer of more than {MAX_REPLY_TEXT >> 20} MB"})
    return text


def _encoded(value, budget: _Budget | None = None) -> dict:
    try:
        return {"ok": encode(value, _refs, _budget=budget)}
    except HandoutError as err:
        return {"unreadable": str(err)}
    except Exception as err:  # a value whose own methods fail while being read
        return {"unreadable": f"{type(err).__name__} while reading it"}


def fetch(name: str) -> str:
    """The student's value of ``name``, as data (called by the grader through the kernel)."""
    namespace = _namespace()
    if name not in namespace:
        return _reply({"missing": True})
    return _reply(_encoded(namespace[name]))


def call(ref: str, payload: str) -> str:
    """Call a function handed out before (by reference) on arguments sent as data."""
    function = _refs.get(ref)
    if function is None:
        return _reply({"unreadable": "the function is no longer known"})
    return _invoke(lambda: function, json.loads(payload))


def method(payload: str) -> str:
    """Call a method of an object the kernel handed out (or of a model sent as data) on data."""
    request = json.loads(payload)
    obj = decode(request["obj"], function=_lookup, kernel=True)
    name = _text(request["name"])
    return _invoke(lambda: getattr(obj, name), request)


def _lookup(key: str, name: str):
    return _refs[key]


def _invoke(target, request: dict) -> str:
    """``target()`` called on the request's arguments: what it returned, or raised, and the arguments after."""
    args = decode(request["args"], function=_lookup, kernel=True)
    kwargs = decode(request["kwargs"], function=_lookup, kernel=True)
    try:
        with _sequential_for(args, kwargs):
            result = target()(*args, **kwargs)
    except BaseException as err:  # reported to the test, which decides what it means
        return _reply({"raised": _raised(err), "args": _after(args, _items(request["args"]))})
    return _reply({**_encoded(result), "args": _after(args, _items(request["args"]))})


def _sequential_for(args, kwargs):
    """joblib kept in this process while a recording model is among the arguments (its record stays here)."""
    import contextlib

    if not any(getattr(type(a), "_handout_sequential", False) is True for a in [*args, *kwargs.values()]):
        return contextlib.nullcontext()
    import joblib

    return joblib.parallel_config(backend="sequential")


def _raised(err: BaseException) -> dict:
    """What a student's function raised, for the test; an interrupt or an exit goes on up instead."""
    if isinstance(err, (KeyboardInterrupt, SystemExit)) and not isinstance(err, Exception):
        raise err
    return {"type": type(err).__name__, "builtin": type(err).__module__ == "builtins", "message": str(err)[:MAX_TEXT]}


def call_each(ref: str, payload: str) -> str:
    """Call a handed-out function on each ``[args, kwargs]`` pair sent, in order, in one request.

    Each result is read as soon as its call returns (a function that returns one object it keeps
    changing gives what a loop would see). The first exception stops the calls, and so does the
    time the grader sent (``seconds``) running out between calls, as if interrupted: an interrupt
    swallowed by one call must not keep the others running.
    """
    import time

    function = _refs.get(ref)
    if function is None:
        return _reply({"unreadable": "the function is no longer known"})
    request = json.loads(payload)
    end = time.monotonic() + float(request.get("seconds", 1e9))
    calls = decode(request["calls"], function=_lookup, kernel=True)
    budget = _Budget()
    results, after = [], []
    sent = [_items((_items(pair) or [None])[0]) for pair in _items(request["calls"]) or []]
    for i, (args, kwargs) in enumerate(calls):
        before = sent[i] if i < len(sent) else None
        if time.monotonic() > end:
            return _reply({"raised": {"type": "KeyboardInterrupt", "builtin": True, "message": "out of time"},
                           "args": after})
        try:
            result = function(*args, **kwargs)
        except BaseException as err:  # reported to the test, which decides what it means
            return _reply({"raised": _raised(err), "args": after + [_after(args, before)]})
        encoded = _encoded(result, budget)
        if "unreadable" in encoded:
            return _reply(encoded)
        results.append(encoded["ok"])
        after.append(_after(args, before))
    return _reply({"ok": {"t": "list", "v": results}, "args": after})


def reach(ref: str, skip_refs: list) -> str:
    """What a handed-out function reaches, as a graph (for "by hand" rules judged by the grader)."""
    function = _refs.get(ref)
    skip = [_refs[key] for key in skip_refs if key in _refs]
    try:
        return _reply({"ok": reach_graph(function, skip)})
    except Exception as err:
        return _reply({"unreadable": f"{type(err).__name__} while following what the function calls"})


#: Most objects one reach graph may hold.
MAX_NODES = 5000


def reach_graph(function, skip=()) -> dict:
    """The objects ``function`` reaches by the names its code reads, as plain data.

    Every name its code objects (nested ones too) read is resolved through the function's closure cells,
    its globals and ``sys.modules``. A module is followed, three levels deep, along the names the function
    reads; a ``functools.partial`` to its function; a function defined in the notebook (``__main__``) is
    followed in turn. Each node gives the object's module, name and qualified name, so that the grader
    can decide, outside the kernel, which of them a rule bans (``gutcourse.checks.library_calls``).
    """
    import functools
    import sys
    import types

    nodes: list[dict] = []
    keep: list = []
    index: dict[int, int] = {}
    skip_ids = {id(s) for s in skip}

    def codes(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from codes(const)

    def node(obj) -> int:
        key = id(obj)
        if key in index:
            return index[key]
        if len(nodes) >= MAX_NODES:
            raise HandoutError(f"more than {MAX_NODES} objects reached")
        is_module = isinstance(obj, types.ModuleType)
        module = obj.__name__ if is_module else getattr(obj, "__module__", None)
        name = getattr(obj, "__name__", None)
        entry = {"module": str(module or ""), "name": str(name if isinstance(name, str) else type(obj).__name__),
                 "qual": f"{module}.{getattr(obj, '__qualname__', '')}" if not is_module else str(module),
                 "skip": key in skip_ids, "kind": "other"}
        index[key] = len(nodes)
        nodes.append(entry)
        keep.append(obj)
        if isinstance(obj, functools.partial):
            entry["kind"] = "partial"
            entry["func"] = node(obj.func)
        elif is_module:
            entry["kind"] = "module"
            entry["attrs"] = {}
        elif isinstance(obj, types.FunctionType) and obj.__module__ == "__main__":
            entry["kind"] = "function"
            # Every global a code object (nested ones too) reads, and the function's own closure cells.
            # A nested comprehension's free variables are locals of the enclosing code, not globals.
            names = set(obj.__code__.co_freevars)
            for code in codes(obj.__code__):
                names |= set(code.co_names)
            closure = {}
            for var, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
                try:
                    closure[var] = cell.cell_contents
                except ValueError:
                    pass
            entry["names"] = sorted(names)
            entry["edges"] = {}
            for n in entry["names"]:
                target = closure[n] if n in closure else obj.__globals__.get(n, sys.modules.get(n))
                if target is not None:
                    entry["edges"][n] = node(target)
        return index[key]

    explored: set = set()

    def look(i: int, names: tuple, depth: int) -> None:
        entry, obj = nodes[i], keep[i]
        if entry["kind"] == "partial":
            look(entry["func"], names, depth)
        elif entry["kind"] == "module" and depth < 3:
            if (i, names, depth) in explored:
                return
            explored.add((i, names, depth))
            for attr in names:
                try:
                    sub = getattr(obj, attr, None)
                except Exception:
                    sub = None
                if sub is not None and sub is not obj:
                    entry["attrs"][attr] = node(sub)
                    look(entry["attrs"][attr], names, depth + 1)
        elif entry["kind"] == "function":
            visit(i)

    visited: set = set()

    def visit(i: int) -> None:
        if i in visited:
            return
        visited.add(i)
        names = tuple(nodes[i]["names"])
        for n in names:
            if n in nodes[i]["edges"]:
                look(nodes[i]["edges"][n], names, 0)

    if function is not None:
        root = node(function)
        if nodes[root]["kind"] == "function":
            visit(root)
        else:
            look(root, (), 0)
    return {"nodes": nodes}


def watch(ref: str, payload: str) -> str:
    """Call a handed-out function on a probe input and report which banned library functions ran."""
    function = _refs.get(ref)
    request = json.loads(payload)
    args = decode(request["args"], function=_lookup, kernel=True)
    skip = [_refs[key] for key in request.get("skip", []) if key in _refs]
    try:
        found = watch_call(function, args, request.get("banned_modules", []), request.get("banned", []), skip)
    except Exception as err:
        return _reply({"unreadable": f"{type(err).__name__} while watching the function"})
    return _reply({"ok": found})


_DECORATOR_NAMES = frozenset({"wrapper", "wrapped", "inner", "decorated", "_wrapper", "new_func", "func",
                              "axis_nan_policy_wrapper"})


def watch_call(function, args, banned_modules, banned_quals, skip=()) -> list[str]:
    """The banned library functions that run while ``function(*args)`` runs, found by profiling the call.

    A function is banned when its module is one of ``banned_modules`` or inside one, or when its
    qualified name (``module.qualname``) is in ``banned_quals``. Calls made inside a function of ``skip``
    (the student's own functions a rule allows) are not looked at. An error the function raises is
    ignored: the checks of its values report it.
    """
    import sys

    banned_modules = tuple(str(b) for b in banned_modules)
    banned_quals = {str(q) for q in banned_quals}
    skip_codes = {getattr(f, "__code__", None) for f in skip} - {None}
    found: list[str] = []
    inside: list = []  # the frame of a skipped function being run, if any

    def banned(module: str, qual: str) -> bool:
        return qual in banned_quals or any(module == b or module.startswith(b + ".") for b in banned_modules)

    def profile(frame, event, arg):
        if inside:
            if event == "return" and frame is inside[0]:
                inside.clear()
            return
        if event == "call":
            code = frame.f_code
            if code in skip_codes or code.co_filename.startswith("<frozen importlib"):
                inside.append(frame)  # an allowed function of the student's, or a module being imported
                return
            module = str(frame.f_globals.get("__name__", ""))
            if banned(module, f"{module}.{code.co_qualname}"):
                if code.co_name in _DECORATOR_NAMES or code.co_name.startswith("<"):
                    return  # a decorator's wrapper: the function it wraps is named when it runs
                if code.co_name not in found:
                    found.append(code.co_name)
                inside.append(frame)  # what a banned function calls in turn is its own business
        elif event == "c_call":
            module = str(getattr(arg, "__module__", None) or "")
            qual = f"{module}.{getattr(arg, '__qualname__', '')}"
            name = str(getattr(arg, "__name__", "function"))
            if banned(module, qual) and name not in found:
                found.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        function(*args)
    except Exception:
        pass
    finally:
        sys.setprofile(previous)
    public = [name for name in found if not name.startswith("_")]  # a library's own helpers, when its API shows
    return sorted(public or found)


#: The shell message types of the grader's requests and the kernel's replies (see :func:`serve`).
REQUEST, REPLY = "gutcourse_request", "gutcourse_reply"


def serve() -> str:
    """Answer the grader's requests as ``gutcourse_request`` shell messages from now on.

    A request through the kernel's execute path runs IPython's cell machinery around an
    empty cell (its hooks, an output flush and a short sleep in ipykernel, the answer
    formatted as a string's repr): about 4 ms each, and a test judged outside the kernel
    makes hundreds. A message of its own goes straight to :func:`_answer`. The grader
    asks for this once per notebook; if it does not work, it keeps the execute path.
    """
    from IPython import get_ipython

    kernel = get_ipython().kernel
    kernel.shell_handlers[REQUEST] = functools.partial(_answer, kernel)
    _answer_without_status(kernel)
    return _reply({"ok": True})


def _answer_without_status(kernel) -> None:
    """Take requests before ipykernel's dispatcher, which announces "busy" and "idle" for each message.

    Those two status messages per request (a hundred requests a notebook) go out on IOPub to
    nobody who waits for them, and the grader's notebook client decodes each later only to
    drop it. Every other message goes to ipykernel's dispatcher as before; a request still
    sets the parent of what the student's code prints, runs with the interrupt handler
    ipykernel gives every handler (the grader's time limit), and flushes output, as ipykernel would.
    """
    dispatch = kernel.dispatch_shell
    if getattr(dispatch, "_gutcourse_requests", False):
        return

    async def dispatch_shell(msg, /, subshell_id=None, **kwargs):
        if subshell_id is None and not kwargs and kernel.session is not None:
            try:
                idents, frames = kernel.session.feed_identities(msg, copy=False)
                parsed = kernel.session.deserialize(frames, content=False, copy=False)
                ours = parsed["header"].get("msg_type") == REQUEST
            except Exception:
                ours = False
            if ours:
                try:
                    parsed = kernel.session.deserialize(frames, content=True, copy=False)
                except Exception:
                    return  # ipykernel drops a message it cannot read, too
                kernel.set_parent(idents, parsed, channel="shell")
                # The reply goes where ipykernel sends a handler's: through its shell-channel thread when it has one.
                if getattr(kernel, "_supports_kernel_subshells", False):
                    stream = kernel.shell_channel_thread.manager.get_subshell_to_shell_channel_socket(None)
                else:
                    stream = kernel.shell_stream
                with contextlib.suppress(Exception):
                    kernel.pre_handler_hook()  # an interrupt stops the student's code, as in any handler
                try:
                    _answer(kernel, stream, idents, parsed)
                except KeyboardInterrupt:  # one that lands while the reply is sent: the kernel goes on, as ipykernel's
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        kernel.post_handler_hook()
                for output in (sys.stdout, sys.stderr):
                    # Only what the student's code printed: a flush of an empty stream still waits
                    # for ipykernel's output thread (two waits a request).
                    if output is not None and (getattr(output, "_flush_pending", True)
                                               or getattr(output, "_subprocess_flush_pending", False)):
                        output.flush()
                return
        return await dispatch(msg, subshell_id, **kwargs)

    dispatch_shell._gutcourse_requests = True
    kernel.dispatch_shell = dispatch_shell


def _answer(kernel, stream, ident, parent) -> None:
    """One request (``{"op": ..., "args": [...]}``) answered on the shell channel, as ipykernel answers its own."""
    content = parent.get("content") or {}
    try:
        op = _OPERATIONS[content["op"]]
        args = content["args"]
        if type(args) is not list:
            raise TypeError("the request's arguments are not a list")
        reply = {"status": "ok", "text": op(*args)}
    except BaseException as err:  # an interrupt too: the grader reads it from the reply
        reply = {"status": "error", "ename": type(err).__name__, "evalue": str(err)[:200]}
    try:
        kernel.session.send(stream, REPLY, reply, parent, ident)
    except Exception as err:  # an answer that cannot be sent (a lone surrogate in a message): say so, plainly
        kernel.session.send(stream, REPLY, {"status": "error", "ename": "HandoutError",
                                            "evalue": f"the answer could not be sent ({type(err).__name__})"},
                            parent, ident)


def _after(args, sent=None) -> list:
    """Arguments as they are after the call, for those a function could change in place.

    ``sent`` is the arguments as the grader sent them (encoded): an argument that encodes
    the same after the call is reported as None (unchanged), so the grader need not
    encode its own copy again to find that out.
    """
    sent = sent if type(sent) is list and len(sent) == len(args) else [None] * len(args)
    out = []
    for arg, before in zip(args, sent):
        if type(arg).__module__.split(".")[0] in ("numpy", "pandas") or type(arg) in (list, dict, set):
            state = _encoded(arg)
            out.append(None if before is not None and state.get("ok") == before else state)
        elif type(before) is dict and before.get("t") == "estimator" and _is_estimator(arg):
            # A model the grader sent as data (not the kernel's own): what the call did to it, or what
            # it recorded (gutcourse.recording), compared without the kernel's references.
            try:
                state = {"ok": encode(arg, None)}
            except Exception as err:
                state = {"unreadable": f"{type(err).__name__} while reading it"}
            out.append(None if state.get("ok") == before else state)
        else:
            out.append(None)
    return out


def _items(data):
    """The encoded items of an encoded list or tuple (None for anything else)."""
    return data.get("v") if type(data) is dict and data.get("t") in ("list", "tuple") else None


_OPERATIONS = {"fetch": fetch, "call": call, "call_each": call_each, "reach": reach, "watch": watch,
               "method": method}
