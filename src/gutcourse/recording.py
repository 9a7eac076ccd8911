"""A classifier that remembers what it was fitted on, for tests of cross-validation code.

A test gives :class:`RecordingClassifier` to a student's cross-validation function and then
reads which rows and columns each fit saw: were the folds the prescribed ones, was X left
untouched, were features chosen before the split. It holds no answers: it only records.

scikit-learn copies a model before each fit (``sklearn.base.clone``), so the record is kept
by name (the ``log`` parameter), not in the instance. When tests are judged outside the
kernel (``gutcourse.handout``), the model travels to the kernel as data and the record
comes back the same way; joblib is kept in the kernel's process while it runs.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

_LOGS: dict[str, list] = {}


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Remembers the data it is fitted on (under the name ``log``); always predicts the first class."""

    _handout_sequential = True

    def __init__(self, log: str = "default"):
        self.log = log

    @staticmethod
    def forget(log: str) -> None:
        """Start the record named ``log`` afresh."""
        _LOGS[_name(log)] = []

    def fit(self, X, y):
        _LOGS.setdefault(_name(self.log), []).append(np.asarray(X, dtype=float).copy())
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def fitted_on(self) -> list:
        """The X of every fit recorded under this model's ``log``, in order (copies)."""
        return [a.copy() for a in _LOGS.get(_name(self.log), [])]

    # What travels with the model between the grader and the kernel (gutcourse.handout).
    def _handout_state(self) -> list:
        return _LOGS.get(_name(self.log), [])

    def _handout_restore(self, state) -> None:
        if type(state) is not list:
            raise ValueError("a record that is not a list")
        _LOGS[_name(self.log)] = [np.asarray(a, dtype=float) for a in state]


def _name(log) -> str:
    if type(log) is not str or len(log) > 100:
        raise ValueError("a record's name (log) must be a short text")
    return log
