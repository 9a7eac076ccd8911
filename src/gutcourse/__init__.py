"""gutcourse: a graded course module on gut immunity, intestinal permeability,
inflammation markers and gut microbiome diversity.

Public modules: ``gutcourse.data`` (datasets), ``gutcourse.simulate`` (their
generators), ``gutcourse.plotting``, ``gutcourse.widgets``, ``gutcourse.checks``
(comparisons for test cells), ``gutcourse.phylogeny`` (a taxonomy-derived tree of the
genera) and ``gutcourse.grading`` (instructor tooling).
Nothing here holds the answer to a graded exercise.
"""

__version__ = "0.1.0"
