"""Generate the student versions of assignments (nbgrader generate_assignment)."""

from __future__ import annotations

from ..errors import GutcourseError
from ._course import course_root, make_api, source_assignments


class ReleaseError(GutcourseError, RuntimeError):
    pass


def release(config, assignments: list[str] | None = None) -> list[str]:
    """Generate the student version of each assignment (all found in ``source/`` by default).

    Raises ``ReleaseError`` naming the assignment and nbgrader's reason on failure.
    """
    root = course_root(config)
    known = source_assignments(root)
    names = list(assignments) if assignments else known
    unknown = [a for a in names if a not in known]
    if unknown:
        raise ReleaseError(f"no assignment {', '.join(unknown)} in {root / 'source'}; "
                           f"known: {', '.join(known) or 'none'}")
    api = make_api(config)
    for name in names:
        outcome = api.generate_assignment(name, force=True, create=True)
        if not outcome.get("success"):
            raise ReleaseError(f"generate_assignment failed for {name}:\n"
                               f"{(outcome.get('error') or outcome.get('log') or '').strip()}")
    return names
