"""Feedback without hidden tests.

nbgrader's feedback is the autograded notebook rendered as HTML. Its test cells
hold the hidden tests (autograde restores them), and an error's traceback
quotes the failing line of test code. :class:`HideHiddenTests` removes both:
the hidden regions from every test cell's source, and every traceback from its
outputs, keeping the one line a student needs (``AssertionError: <message>``).
``nbgrader_config.py`` puts it in ``GenerateFeedback.preprocessors``.
"""

from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests

from ._notebooks import is_test


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test code and tracebacks from test cells before feedback is rendered."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if is_test(cell):
            kept = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
                    kept.append(out)
                # Printed output of test code may echo hidden inputs, so only the verdict stays.
            cell["outputs"] = kept
        return cell, resources


def generate_feedback(config, assignment: str, students: list[str] | None = None) -> dict[str, str | None]:
    """Write ``feedback/<student>/<assignment>/*.html``; returns student -> error (None if fine)."""
    from ._course import course_path, make_api

    api = make_api(config)
    if students is None:
        autograded = course_path(config, "autograded", ".")
        students = sorted(p.name for p in autograded.iterdir()
                          if course_path(config, "autograded", assignment, p.name).is_dir()) \
            if autograded.is_dir() else []
    errors = {}
    for student in students:
        outcome = api.generate_feedback(assignment, student, force=True)
        errors[student] = None if outcome.get("success") else (outcome.get("error") or outcome.get("log"))
    return errors
