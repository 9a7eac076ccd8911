"""The course's late policy, as an nbgrader late-submission plugin.

nbgrader ships one plugin, ``LateSubmissionPlugin``, whose ``penalty_method`` is
``none`` or ``zero``. :class:`LatePolicy` is the common middle ground: a
percentage of the score per started day late, after a grace period, up to a cap.
It is configured in ``nbgrader_config.py``::

    c.AssignLatePenalties.plugin_class = "gutcourse.grading.late.LatePolicy"
    c.LatePolicy.percent_per_day = 10
    c.LatePolicy.max_percent = 50
    c.LatePolicy.grace_minutes = 15

nbgrader then calls it while autograding (``AssignLatePenalties``), so the
formgrader and the feedback show the penalty; ``gutcourse export`` calls the same
configured plugin again on the final score, manual grades included
(``docs/lms_export.md``).

Lateness is nbgrader's own ``SubmittedAssignment.total_seconds_late``: the
submission's timestamp minus the assignment's due date plus the student's
extension, never negative.
"""

from __future__ import annotations

import math

from nbgrader.plugins import BasePlugin
from traitlets import Float, TraitError, validate

__all__ = ["LatePolicy", "SECONDS_PER_DAY"]

SECONDS_PER_DAY = 86400


class LatePolicy(BasePlugin):
    """A percentage of the score earned per started day late, after a grace period, capped.

    A submission at most ``grace_minutes`` after the due date is on time.
    Past the grace period every started 24 hours counts as a day, counted from the
    due date: 20 minutes late is one day, 24 h 10 min is two.
    The penalty is ``min(days * percent_per_day, max_percent)`` percent of the
    score the student earned (autograded, manual and extra credit together), so a
    late submission never scores below ``100 - max_percent`` percent of what it earned.
    """

    percent_per_day = Float(
        0.0, help="Percent of the score earned taken off per started day late (0: no penalty)."
    ).tag(config=True)
    max_percent = Float(
        100.0, help="The most a late submission loses, in percent of the score earned."
    ).tag(config=True)
    grace_minutes = Float(
        0.0, help="Minutes after the due date (and any extension) that still count as on time."
    ).tag(config=True)

    @validate("percent_per_day", "max_percent")
    def _percent(self, proposal):
        if not 0 <= proposal["value"] <= 100:
            raise TraitError(f"LatePolicy.{proposal['trait'].name} must be between 0 and 100, "
                             f"not {proposal['value']}")
        return proposal["value"]

    @validate("grace_minutes")
    def _grace(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"LatePolicy.grace_minutes must not be negative, not {proposal['value']}")
        return proposal["value"]

    def days_late(self, seconds_late: float) -> int:
        """Started days late, or 0 within the grace period."""
        if seconds_late <= self.grace_minutes * 60:
            return 0
        return math.ceil(seconds_late / SECONDS_PER_DAY)

    def percent(self, seconds_late: float) -> float:
        """Percent of the earned score taken off for a submission ``seconds_late`` late."""
        return min(self.days_late(seconds_late) * self.percent_per_day, self.max_percent)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        """nbgrader's plugin interface: the points taken off ``score``."""
        return score * self.percent(total_seconds_late) / 100
