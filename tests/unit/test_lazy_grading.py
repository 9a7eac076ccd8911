"""`gutcourse.grading` imports nbgrader only when a name needs it, and still adjusts nbgrader then."""

import subprocess
import sys


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_sandbox_and_course_code_load_without_nbgrader():
    out = _run("import sys\n"
               "from gutcourse.grading import load_config\n"
               "from gutcourse.grading.sandbox.forktemplate import warm_up_early, kernel_preloads\n"
               "from gutcourse.grading.sandbox import GradingSandbox, detect\n"
               "print(sorted(m for m in ('nbgrader', 'jupyter_client', 'nbclient') if m in sys.modules))")
    assert out == "[]"


def test_nbgrader_is_adjusted_whoever_imports_it_first():
    out = _run("import gutcourse.grading\n"
               "import nbgrader.api, nbgrader.nbgraderformat.common as common\n"
               "from gutcourse.grading._alembic_head import alembic_head\n"
               "from gutcourse.grading._fast_schema import _CachedValidate\n"
               "print(nbgrader.api.get_alembic_version is alembic_head, isinstance(common.jsonschema, _CachedValidate),"
               " type(nbgrader.__loader__).__name__, type(nbgrader.__spec__.loader).__name__)")
    assert out == "True True SourceFileLoader SourceFileLoader"


def test_nbgrader_imported_before_gutcourse_is_adjusted_at_once():
    out = _run("import nbgrader.api, gutcourse.grading\n"
               "from gutcourse.grading._alembic_head import alembic_head\n"
               "print(nbgrader.api.get_alembic_version is alembic_head)")
    assert out == "True"


def test_functions_named_like_their_modules_stay_functions():
    out = _run("import gutcourse.grading as g\n"
               "import gutcourse.grading.autograde, gutcourse.grading.release, gutcourse.grading.simulate_class\n"
               "from gutcourse.grading import autograde, release, simulate_class, backup, sandbox\n"
               "print(all(callable(f) and not hasattr(f, '__path__') and f.__module__.endswith(f.__name__)\n"
               "          for f in (autograde, release, simulate_class, g.autograde, g.release, g.simulate_class)),\n"
               "      backup.__name__, sandbox.__name__)")
    assert out == "True gutcourse.grading.backup gutcourse.grading.sandbox"


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    import gutcourse.grading
    import gutcourse.grading.sandbox

    with pytest.raises(AttributeError, match="no_such_name"):
        gutcourse.grading.no_such_name  # noqa: B018
    with pytest.raises(AttributeError, match="no_such_name"):
        gutcourse.grading.sandbox.no_such_name  # noqa: B018
    assert "grade_class" in dir(gutcourse.grading) and "GuardedExecute" in dir(gutcourse.grading.sandbox)
