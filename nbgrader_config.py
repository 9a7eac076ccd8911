"""nbgrader configuration for the gut immunity course module.

nbgrader reads this file when it is started from the repository root;
the `gutcourse` command loads it explicitly, so both see the same settings.
Paths are absolute so the file works from any working directory.
"""

import os

_here = os.path.dirname(os.path.abspath(__file__))
_course_root = os.environ.get("GUTCOURSE_COURSE_ROOT", os.path.join(_here, "coursework"))

c = get_config()  # noqa: F821  (provided by traitlets when this file is loaded)

c.CourseDirectory.course_id = "gut-immunity"
c.CourseDirectory.root = _course_root
# SQLite beside the course folders by default; `gutcourse grade --db URL` takes any SQLAlchemy URL.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_course_root, "gradebook.db")

c.IncludeHeaderFooter.header = os.path.join(_course_root, "source", "header.ipynb")

# Seconds one cell may run while autograding before its kernel is interrupted.
# The course's notebooks run in seconds; this bounds an infinite loop, not real work.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# Keep feedback and the gradebook small when a submission floods its output.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50

# Feedback must not show hidden tests: neither their source nor the traceback lines
# that quote it.  The preprocessor lives in the package so it is tested.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "gutcourse.grading.feedback.HideHiddenTests",
    # A submission's HTML, markdown and scripts are made inert: instructors open these pages too.
    "gutcourse.grading.feedback.SanitizeFeedbackHTML",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]


# Safe grading (docs/security.md): every kernel runs in a sandbox, and submitted
# notebooks are repaired (deleted, copied or altered graded cells) before grading.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "gutcourse.grading.repair.RepairCells",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "gutcourse.grading.sandbox.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    # nbgrader's SaveAutoGrades, committing a notebook's grades together (gutcourse/grading/savegrades.py).
    "gutcourse.grading.savegrades.SaveAutoGradesOnce",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Collecting from nbgrader's exchange (a hub): refuse what students can forge there, another
# student's name, an early time stamp, links to the grader's files (gutcourse/grading/exchange.py).
c.ExchangeFactory.collect = "gutcourse.grading.exchange.StrictCollect"

# Late policy (docs/lms_export.md). These numbers are this course's choice, not a
# standard: change them to your own. Each started day after the due date (plus any
# extension) takes 10% off the score earned, at most 50%; up to 15 minutes late is
# on time. nbgrader applies it while autograding; `gutcourse export` applies it
# again to the final score, manual grades included.
c.AssignLatePenalties.plugin_class = "gutcourse.grading.late.LatePolicy"
c.LatePolicy.percent_per_day = 10
c.LatePolicy.max_percent = 50
c.LatePolicy.grace_minutes = 15
# `gutcourse export`: a student with no submission gets 0 ("zero") or an empty cell
# ("empty"); for Moodle the roster's lms_id is this user field (username, email, idnumber, id).
c.GradeExport.no_submission = "zero"
c.GradeExport.moodle_user_field = "username"

# Limits of each grading kernel.  Where the machine cannot isolate kernels
# (not root and no bubblewrap, or not Linux) only the limits apply, and
# `gutcourse grade` and `gutcourse check` say so in one line when they start.
c.GradingSandbox.memory_mb = 2048          # address space per kernel process
c.GradingSandbox.cpu_seconds = 600         # CPU time per kernel process
c.GradingSandbox.file_mb = 200             # largest file a kernel may write
c.GradingSandbox.processes = 128           # processes and threads per kernel
c.GradingSandbox.tmp_mb = 256              # the kernel's private /tmp
c.GradingSandbox.interrupt_grace = 5       # seconds to stop after a timeout's interrupt, then the kernel is killed
c.GradingSandbox.submission_timeout = 900  # seconds for a whole notebook; later cells are not run
c.GradingSandbox.max_output_mb = 5         # output kept per notebook while it runs (LimitOutput trims lines after)
c.GradingSandbox.network = False           # kernels get no network
# A graded kernel is thrown away: stopping it at once saves about 0.4 s per submission
# (nbclient's default waits for a graceful shutdown).
c.Execute.shutdown_kernel = "immediate"
