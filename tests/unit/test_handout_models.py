"""scikit-learn models handed between the grader and the kernel as data (ps4 judged outside the kernel).

The kernel's side runs in this process, on the same handout code, through a stand-in link.
"""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gutcourse import checks, handout
from gutcourse.grading.referee import GraderError, Referee, StudentFunction
from gutcourse.handout import HandoutError, decode, encode
from gutcourse.recording import RecordingClassifier

RNG = np.random.default_rng(7)
X = RNG.normal(size=(40, 8))
Y = (X[:, 0] + RNG.normal(scale=0.5, size=40) > 0).astype(int)


def _model(k=3):
    return Pipeline([("scale", StandardScaler()), ("select", SelectKBest(f_classif, k=k)),
                     ("classify", LogisticRegression(max_iter=1000))])


class Link:
    """The kernel's side, in this process: every request answered by gutcourse.handout."""

    def __init__(self):
        self.asked = []

    def ask(self, op, *args, grace):
        self.asked.append(op)
        return json.loads(getattr(handout, op)(*args))

    def deadline(self):
        return 60.0


@pytest.fixture
def student():
    """``student(name, function)``: a function kept in the kernel, as the referee's stand-in."""
    referee = Referee({})
    referee.link = Link()
    keys = []

    def make(name, function):
        key = f"models-test-{name}"
        handout._refs[key] = function
        keys.append(key)
        return StudentFunction(referee, key, name)

    make.referee = referee
    yield make
    for key in keys:
        handout._refs.pop(key, None)


def test_a_students_model_comes_back_readable_but_computes_only_in_the_kernel(student):
    make_model = student("make_model", _model)
    model = make_model()
    assert isinstance(model, Pipeline)
    assert [type(s) for _, s in model.steps] == [StandardScaler, SelectKBest, LogisticRegression]
    assert model.steps[1][1].get_params()["k"] == 3 and model.steps[1][1].score_func.__name__ == "f_classif"
    with pytest.raises(HandoutError, match="runs only in the kernel"):
        model.steps[1][1].score_func(X, Y)  # a student's model's functions never run in the grader
    assert not hasattr(model.steps[-1][1], "coef_")
    with pytest.raises(GraderError, match="checks.method"):
        model.fit(X, Y)  # never on the grader's copy: a student's settings would cost the grader
    with pytest.raises(GraderError):
        model.steps[-1][1].predict(X)
    asked = len(student.referee.link.asked)
    fitted = checks.method(model, "fit", X, Y)
    assert student.referee.link.asked[asked:] == ["method"]
    assert hasattr(fitted.steps[-1][1], "coef_") and int(fitted.steps[1][1].get_support().sum()) == 3
    probabilities = checks.method(fitted, "predict_proba", X)
    assert np.allclose(probabilities, _model().fit(X, Y).predict_proba(X))
    # In a kernel (no referee), checks.method is the method call itself.
    assert np.allclose(checks.method(_model().fit(X, Y), "predict_proba", X), probabilities)


def test_one_kernel_object_is_one_grader_object(student):
    kept = _model()
    same = student("same_model", lambda: kept)
    fresh = student("fresh_model", _model)
    assert same() is same()
    assert fresh() is not fresh()
    # Changed in the kernel (fitted there): the same copy, brought up to date, as the kernel's object is.
    before = same()
    kept.fit(X, Y)
    assert same() is before and hasattr(before.steps[-1][1], "coef_")
    with pytest.raises(GraderError):
        before.fit(X, Y)  # still the student's copy
    # Red team (round 5): one object with an attribute changed at every call is still one object.
    counter = [0]

    def singleton():
        counter[0] += 1
        kept.calls_ = counter[0]
        return kept

    changing = student("changing", singleton)
    assert changing() is changing()


def test_a_tests_own_model_goes_to_the_students_function_as_a_model(student):
    def cv_accuracy(model, data, labels):
        assert type(model) is Pipeline and model.steps[1][1].score_func is f_classif
        return float(cross_val_score(model, data, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())

    function = student("cv_accuracy", cv_accuracy)
    expected = cv_accuracy(_model(), X, Y)
    assert function(_model(), X, Y) == pytest.approx(expected)
    # The student's own model goes back as the kernel's object, not as a copy.
    seen = []
    make_model = student("make_model", _model)
    keep = student("keep", lambda model: seen.append(model) or 1.0)
    model = make_model()
    keep(model)
    assert seen[0] is handout._refs[model.__dict__["_handout_origin"][1]]


def test_a_recording_model_reports_every_fit_back_without_a_note(student):
    def cv_accuracy(model, data, labels):
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        return float(cross_val_score(model, data, labels, cv=folds, n_jobs=2).mean())

    function = student("cv_accuracy", cv_accuracy)
    RecordingClassifier.forget("models-test")
    recorder = RecordingClassifier(log="models-test")
    function(recorder, pd.DataFrame(X), pd.Series(Y))
    seen = recorder.fitted_on()
    splits = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(X, Y))
    assert len(seen) == 5 and all(np.allclose(s, X[train]) for s, (train, _) in zip(seen, splits))
    assert student.referee.notes == []  # a record is what the test asked for, not a change to report


def _with_function(name):
    return {"t": "estimator", "class": "sklearn.preprocessing:FunctionTransformer",
            "params": {"func": {"t": "libfunc", "name": name}}}


@pytest.mark.parametrize("data, words", [
    ({"t": "estimator", "class": "os:system", "params": {}}, "outside the allowed"),
    ({"t": "estimator", "class": "builtins:object", "params": {}}, "outside the allowed"),
    ({"t": "estimator", "class": "__main__:Evil", "params": {}}, "outside the allowed"),
    ({"t": "estimator", "class": "sklearn.tests.test_base:T", "params": {}}, "outside the allowed"),
    ({"t": "estimator", "class": "sklearn.utils:Bunch", "params": {}}, "not a scikit-learn estimator"),
    ({"t": "estimator", "class": "numpy:ndarray", "params": {}}, "outside the allowed"),
    ({"t": "estimator", "class": "sklearn.linear_model:LogisticRegression", "params": {"nonsense": 1}}, "malformed"),
    ({"t": "estimator", "class": "sklearn.linear_model:LogisticRegression", "params": {},
      "fitted": {"t": "dict", "k": ["_handout_origin"], "v": [1]}}, "malformed fitted"),
    ({"t": "estimator", "class": "sklearn.linear_model:LogisticRegression", "params": {},
      "fitted": {"t": "dict", "k": ["fit"], "v": [1]}}, "malformed fitted"),
    ({"t": "libfunc", "name": "numpy:sum"}, "unknown kind"),  # only as a model's parameter
    (_with_function("os:system"), "outside the allowed"),
    (_with_function("builtins:eval"), "outside the allowed"),
    (_with_function("sklearn.utils._testing:assert_run_python_script_without_output"), "outside the allowed"),
    ({"t": "estimator", "class": "sklearn.utils._testing:MinimalClassifier", "params": {}}, "outside the allowed"),
])
def test_models_from_outside_scikit_learn_or_malformed_are_refused(data, words):
    with pytest.raises(HandoutError, match=words):
        decode(data)


def test_a_grader_object_from_elsewhere_cannot_go_to_the_kernel(student):
    """Only this referee's copies travel back as the kernel's objects; a test's own function never does."""
    other = Referee({})
    model = _model()
    model.__dict__["_handout_origin"] = (other, "1", handout.fingerprint(model))
    function = student("f", lambda m: 1.0)
    with pytest.raises(HandoutError, match="passed a function"):
        function(model)
    with pytest.raises(HandoutError, match="passed a function"):
        function(lambda: 1)


def test_models_round_trip_with_what_fitting_stored():
    model = _model().fit(X, Y)
    back = decode(json.loads(json.dumps(encode(model))))
    assert np.allclose(back.predict_proba(X), model.predict_proba(X))
    assert handout.fingerprint(back) == handout.fingerprint(model)


def test_a_model_the_kernel_sends_without_its_reference_is_still_the_students(student):
    """Red team (round 5): a kernel that dropped the reference got its model fitted in the grader, and a
    FunctionTransformer chaining library functions ran a script of the student's in a grader subprocess."""
    from sklearn.base import clone
    from sklearn.preprocessing import FunctionTransformer

    def make_model():
        return Pipeline([("f", FunctionTransformer(np.full_like, kw_args={"fill_value": 1.0})),
                         ("classify", LogisticRegression())])

    def no_reference():
        data = encode(make_model(), handout._refs)
        data.pop("ref")
        return data

    reply = {"ok": no_reference()}
    model = student.referee._value(reply, "`make_model()`")
    with pytest.raises(GraderError):
        model.fit(X, Y)
    copied = clone(model)  # a copy made in the grader has none of the student's functions to run
    with pytest.raises(HandoutError, match="runs only in the kernel"):
        copied.fit(X, Y)
    # checks.method sends it to the kernel as data, where it runs.
    fitted = checks.method(model, "fit", X, Y)
    assert student.referee.link.asked[-1] == "method" and hasattr(fitted.steps[-1][1], "coef_")


def test_the_grader_imports_nothing_a_kernel_names():
    """Red team (round 5): a library function named in a module whose import runs a program (numpy.f2py's
    __main__) was imported by the grader. The grader now never imports: an unknown class is a stand-in
    with its name, a library function a stand-in that never runs; only the kernel looks them up."""
    import sys

    sys.modules.pop("numpy.f2py.__main__", None)
    model = decode(_with_function("numpy.f2py.__main__:main"))
    assert "numpy.f2py.__main__" not in sys.modules
    with pytest.raises(HandoutError, match="runs only in the kernel"):
        model.func(1)
    unknown = decode({"t": "estimator", "class": "sklearn.nonexistent_module:Forest", "params": {}})
    assert isinstance(unknown, handout.Opaque) and not isinstance(unknown, Pipeline)  # its name, while names last
    # In the kernel (what the grader sends), names are looked up, and must be functions.
    with pytest.raises(HandoutError, match="not a function"):
        decode(_with_function("numpy:ndarray"), kernel=True)
    with pytest.raises(HandoutError, match="unknown module"):
        decode(_with_function("sklearn.nonexistent_module:f"), kernel=True)
    assert decode(_with_function("numpy:sum"), kernel=True).func is np.sum


def test_a_recording_model_takes_its_record_only_when_the_test_gave_it():
    """Red team (round 5): a record riding on a fetched model filled the grader's memory for good, and a
    huge `log` cost minutes of the grader's time when printed. Records come back only to the test's own
    recording model, and `log` is a short text."""
    from gutcourse import recording

    recording.RecordingClassifier.forget("mine")
    riding = encode(RecordingClassifier(log="mine"), None)
    riding["state"] = encode([np.zeros((3, 2))])
    decode(riding)
    assert recording._LOGS["mine"] == []
    with pytest.raises(HandoutError, match="short plain values"):
        decode({"t": "estimator", "class": "gutcourse.recording:RecordingClassifier",
                "params": {"log": encode(["x"] * 3)}})
    with pytest.raises(HandoutError, match="short plain values"):
        decode({"t": "estimator", "class": "gutcourse.recording:RecordingClassifier", "params": {"log": "x" * 500}})


def test_a_students_function_never_sets_the_parameters_of_the_tests_model(student):
    def meddle(model):
        model.set_params(classify__max_iter=10**9)
        return 1.0

    function = student("meddle", meddle)
    model = _model()
    function(model)
    assert model.get_params()["classify__max_iter"] == 1000


def test_one_object_many_times_in_a_hand_out_stays_one_small_copy(student):
    """Red team (round 6): a hand-out naming one kernel reference inside itself, or stubs completed later, made
    the in-place update build a copy that held itself (or a DAG): every later send walked b**24 paths. The copy
    made first stands, and reading a model visits at most MAX_MODELS models."""
    import time

    inner = encode(_model(), handout._refs)
    ref = inner["ref"]
    outer = json.loads(json.dumps(inner))
    outer["params"]["steps"] = encode([("s%d" % i, _model()) for i in range(6)], None)
    for i in range(6):
        outer["params"]["steps"]["v"][i]["v"][1] = dict(inner)
    model = student.referee._value({"ok": outer}, "`x`")
    started = time.process_time()  # CPU time: a busy machine does not make it fail
    assert all(step is model for _, step in model.steps) or all(step is not model for _, step in model.steps)
    handout.fingerprint(model)
    student.referee._send(model)
    assert time.process_time() - started < 2.0  # it was minutes
    # A wide, deep sharing of one step: reading stops at MAX_MODELS visits.
    shared = _model()
    nested = shared
    for _ in range(30):
        nested = Pipeline([(f"s{i}", nested) for i in range(3)])
    assert handout.fingerprint(nested) == "unreadable"


def test_a_students_long_exception_message_is_cut_in_the_test_output():
    """Red team (round 6): a student's exception of 40 MB was copied whole into the autograded notebook (600 MB)."""
    from gutcourse.grading.referee import MAX_MESSAGE, _error_output

    out = _error_output(ValueError("A" * 5_000_000), "test")
    assert len(out.evalue) < MAX_MESSAGE + 100 and "more characters not shown" in out.evalue
    assert sum(len(line) for line in out.traceback) < 3 * MAX_MESSAGE
