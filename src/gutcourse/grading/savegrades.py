"""nbgrader's ``SaveAutoGrades``, committing once per notebook instead of once per cell.

nbgrader commits after every grade and every comment it records: about 70 commits for a
ps2 notebook, each one a wait for the disk (SQLite) or a round trip (PostgreSQL), and each
one expiring every object the session holds, so the next cell's lookups load them again.
Here the per-cell commits only flush, and the notebook's grades are committed together at
the end: a notebook's automatic grades are then saved all or not at all (an error half-way
used to leave half of them saved, beside a failed autograde).
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from nbgrader.api import Gradebook
from nbgrader.preprocessors import SaveAutoGrades


class SaveAutoGradesOnce(SaveAutoGrades):
    """``SaveAutoGrades`` with one commit per notebook (same grades, same comments)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
        self.student_id, self.db_url = info["student"], info["db_url"]
        self.gradebook = Gradebook(self.db_url)
        with self.gradebook:
            session = self.gradebook.db()  # the session behind nbgrader's scoped session
            session.commit = session.flush  # what nbgrader's per-cell commits do now
            try:
                nb, resources = Preprocessor.preprocess(self, nb, resources)  # SaveAutoGrades.preprocess_cell per cell
            finally:
                del session.commit
            session.commit()
        return nb, resources
