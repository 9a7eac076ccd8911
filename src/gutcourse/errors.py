"""The one base of the errors `gutcourse` reports to its user in words (and exits 1) instead of a traceback."""


class GutcourseError(Exception):
    """An error whose message says what is wrong and what to do; the command prints it and exits 1."""
