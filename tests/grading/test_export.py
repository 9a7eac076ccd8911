"""`gutcourse export`: grades out to Canvas, Moodle or a plain CSV.

The gradebook is built with nbgrader's own API (no notebooks, no kernels):
one assignment of 10 points, due 2026-03-02 12:00 UTC, with two autograded
cells and one manually graded answer, and six students:

| student | submitted (UTC)        | auto      | manual       | score | late                      | final |
|---------|------------------------|-----------|--------------|-------|---------------------------|-------|
| alice   | 03-02 11:00            | 4 + 3     | 2 + 0.5 extra| 9.5   | on time                   | 9.5   |
| bob     | 03-03 13:00 (25 h)     | 4 + 1     | 1            | 6     | 2 started days: 20 %      | 4.8   |
| carol   | 03-02 12:10 (10 min)   | 2 + 3     | 3            | 8     | within 15 min grace: 0 %  | 8     |
| dave    | nothing                |           |              |       |                           | 0     |
| erin    | 03-12 12:00 (10 days)  | 4 + 3     | not yet      | 7     | 100 % capped at 50 %      | 3.5   |
| frank   | 03-02 15:00, +1 day ext| 4 + 0     | 0            | 4     | on time (extension)       | 4     |

The late policy in these tests is 10 % of the score per started day, at most
50 %, 15 minutes' grace (set here, so the tests do not depend on the course's choice).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from traitlets.config import Config

from gutcourse.grading.export import (ExportError, RosterError, export_grades, read_grades, read_roster,
                                      render)
from gutcourse.grading.late import LatePolicy

ASSIGNMENT = "ps9_gut"


def policy_config(db: Path, root: Path, **extra) -> Config:
    c = Config()
    c.CourseDirectory.db_url = f"sqlite:///{db}"
    c.CourseDirectory.course_id = "gut-immunity"
    c.CourseDirectory.root = str(root)
    c.AssignLatePenalties.plugin_class = "gutcourse.grading.late.LatePolicy"
    c.LatePolicy.percent_per_day = 10
    c.LatePolicy.max_percent = 50
    c.LatePolicy.grace_minutes = 15
    for section, values in extra.items():
        for key, value in values.items():
            setattr(c[section], key, value)
    return c


def alembic_head() -> str:
    """nbgrader's schema version, read in-process (nbgrader runs `alembic heads` in a subprocess: seconds)."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> Path:
    import nbgrader.api
    from nbgrader.api import Gradebook

    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nbgrader.api, "get_alembic_version", alembic_head)
        gb = Gradebook(f"sqlite:///{db}", course_id="gut-immunity")
    with gb:
        gb.add_assignment(ASSIGNMENT, duedate="2026-03-02 12:00:00 UTC")
        gb.add_notebook(ASSIGNMENT, ASSIGNMENT)
        gb.add_grade_cell("q1_test", ASSIGNMENT, ASSIGNMENT, max_score=4, cell_type="code")
        gb.add_grade_cell("q2_written", ASSIGNMENT, ASSIGNMENT, max_score=3, cell_type="markdown")
        gb.add_grade_cell("q3_test", ASSIGNMENT, ASSIGNMENT, max_score=3, cell_type="code")
        students = {
            "alice": ("Alice", "Adams", "2026-03-02 11:00:00 UTC", None, (4, 3), (2, 0.5)),
            "bob": ("Bob", "Brown", "2026-03-03 13:00:00 UTC", None, (4, 1), (1, None)),
            "carol": ("Carol", "Doe", "2026-03-02 12:10:00 UTC", None, (2, 3), (3, None)),
            "dave": ("Dave", "", None, None, None, None),
            "erin": ("", "Evans", "2026-03-12 12:00:00 UTC", None, (4, 3), None),
            "frank": ("Frank", "Fox", "2026-03-02 15:00:00 UTC", dt.timedelta(days=1), (4, 0), (0, None)),
        }
        for sid, (first, last, stamp, extension, auto, manual) in students.items():
            gb.add_student(sid, first_name=first, last_name=last)
            if stamp is None:
                continue
            gb.add_submission(ASSIGNMENT, sid, timestamp=stamp, extension=extension)
            for cell, score in zip(("q1_test", "q3_test"), auto):
                grade = gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, sid)
                grade.auto_score, grade.needs_manual_grade = score, False
            written = gb.find_grade("q2_written", ASSIGNMENT, ASSIGNMENT, sid)
            if manual is not None:
                written.manual_score, written.extra_credit = manual
                written.needs_manual_grade = False
            gb.db.commit()
    return db


@pytest.fixture
def config(gradebook, tmp_path) -> Config:
    return policy_config(gradebook, tmp_path)


def write_roster(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ROSTER = '''student_id,lms_id,name,sis_user_id,sis_login_id,section
alice,1001,"Adams, Alice",S-001,aadams,Lab A
bob,1002,"Brown, Bob",S-002,bbrown,Lab A
carol,1003,"Doe, Carol ""CJ""",S-003,cdoe,Lab B
dave,1004,"Dent, Dave",S-004,ddent,Lab B
erin,1005,"Evans, Erin",S-005,eevans,Lab A
frank,1006,"Fox, Frank",S-006,ffox,Lab B
'''


# --- reading the gradebook ------------------------------------------------------------------


def test_scores_include_manual_grades_extra_credit_and_the_late_policy(config):
    grades = {g.student_id: g for g in read_grades(config, ASSIGNMENT)}
    assert list(grades) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert grades["alice"].raw_score == pytest.approx(9.5)          # 4 + 3 auto, 2 manual, 0.5 extra
    assert grades["alice"].late_penalty == 0 and grades["alice"].status == "on time"
    assert grades["bob"].seconds_late == 25 * 3600
    assert grades["bob"].late_penalty == pytest.approx(1.2)           # 20 % of 6
    assert grades["carol"].status == "late" and grades["carol"].late_penalty == 0  # within grace
    assert not grades["dave"].submitted and grades["dave"].raw_score is None
    assert grades["erin"].late_penalty == pytest.approx(3.5)          # capped at 50 % of 7
    assert grades["erin"].needs_manual_grade
    assert grades["frank"].status == "on time"                        # the extension counts
    assert {g.max_score for g in grades.values()} == {10.0}


def test_without_a_late_plugin_nbgrader_default_gives_no_penalty(gradebook, tmp_path):
    c = policy_config(gradebook, tmp_path)
    del c.AssignLatePenalties["plugin_class"]
    grades = {g.student_id: g for g in read_grades(c, ASSIGNMENT)}
    assert grades["bob"].late_penalty == 0 and grades["erin"].late_penalty == 0


def test_nbgrader_zero_method_is_honoured(gradebook, tmp_path):
    c = policy_config(gradebook, tmp_path)
    c.AssignLatePenalties.plugin_class = "nbgrader.plugins.LateSubmissionPlugin"
    c.LateSubmissionPlugin.penalty_method = "zero"
    grades = {g.student_id: g for g in read_grades(c, ASSIGNMENT)}
    assert grades["bob"].late_penalty == pytest.approx(6)
    assert grades["alice"].late_penalty == 0


def test_unknown_assignment_and_missing_gradebook_are_clear_errors(config, tmp_path):
    with pytest.raises(ExportError, match=r"no assignment 'ps7' in the gradebook \(it has: ps9_gut\)"):
        read_grades(config, "ps7")
    absent = policy_config(tmp_path / "nothing.db", tmp_path)
    with pytest.raises(ExportError, match="no gradebook at"):
        read_grades(absent, ASSIGNMENT)
    assert not (tmp_path / "nothing.db").exists()


# --- the late policy ------------------------------------------------------------------------


def test_late_policy_counts_started_days_after_the_grace_period():
    policy = LatePolicy(percent_per_day=10, max_percent=50, grace_minutes=15)
    assert [policy.days_late(s) for s in (0, 15 * 60, 15 * 60 + 1, 86400, 86401, 10 * 86400)] == [0, 0, 1, 1, 2, 10]
    assert policy.percent(3 * 86400) == 30 and policy.percent(9 * 86400) == 50
    assert policy.late_submission_penalty("x", 8.0, 86400 + 1) == pytest.approx(1.6)


def test_late_policy_rejects_impossible_settings():
    from traitlets import TraitError

    with pytest.raises(TraitError, match="percent_per_day must be between 0 and 100"):
        LatePolicy(percent_per_day=120)
    with pytest.raises(TraitError, match="grace_minutes must not be negative"):
        LatePolicy(grace_minutes=-1)


def test_the_course_states_its_late_policy_in_nbgrader_config():
    from nbgrader.preprocessors import AssignLatePenalties

    from gutcourse.grading import load_config

    assigner = AssignLatePenalties(config=load_config())
    assigner.init_plugin()
    assert isinstance(assigner.plugin_inst, LatePolicy)
    assert assigner.plugin_inst.percent_per_day > 0


def test_nbgrader_stores_the_same_policy_while_autograding(gradebook, tmp_path):
    """nbgrader's AssignLatePenalties, configured as in nbgrader_config.py, calls LatePolicy."""
    import shutil

    from nbformat.v4 import new_notebook
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties

    db = tmp_path / "copy.db"
    shutil.copy(gradebook, db)
    c = policy_config(db, tmp_path)
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "assignment": ASSIGNMENT, "student": "bob",
                              "db_url": f"sqlite:///{db}"}}
    AssignLatePenalties(config=c).preprocess(new_notebook(), resources)
    with Gradebook(f"sqlite:///{db}", course_id="gut-immunity") as gb:
        stored = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "bob").late_submission_penalty
    assert stored == pytest.approx(1.2)  # 2 started days: 20 % of 6


# --- the three formats, byte for byte -------------------------------------------------------


def test_canvas_file(config, tmp_path):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    out = tmp_path / "canvas.csv"
    result = export_grades(config, ASSIGNMENT, "canvas", roster=roster, out=out,
                           title="Gut permeability (77)")
    assert out.read_bytes() == (
        b"Student,ID,SIS User ID,SIS Login ID,Section,Gut permeability (77)\r\n"
        b"Points Possible,,,,,10\r\n"
        b'"Adams, Alice",1001,S-001,aadams,Lab A,9.5\r\n'
        b'"Brown, Bob",1002,S-002,bbrown,Lab A,4.8\r\n'
        b'"Doe, Carol ""CJ""",1003,S-003,cdoe,Lab B,8\r\n'
        b'"Dent, Dave",1004,S-004,ddent,Lab B,0\r\n'
        b'"Evans, Erin",1005,S-005,eevans,Lab A,3.5\r\n'
        b'"Fox, Frank",1006,S-006,ffox,Lab B,4\r\n')
    assert result.summary() == f"wrote {out} (canvas): 6 students, 2 on time, 3 late, 1 without a submission"
    assert any("need manual grading" in n and "erin" in n for n in result.notes)
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_moodle_file_with_the_configured_user_field(gradebook, tmp_path):
    c = policy_config(gradebook, tmp_path, GradeExport={"moodle_user_field": "email"})
    roster = write_roster(tmp_path / "roster.csv", "student_id,lms_id\n" + "".join(
        f"{s},{s}@uni.example\n" for s in ("alice", "bob", "carol", "dave", "erin", "frank")))
    out = tmp_path / "moodle.csv"
    export_grades(c, ASSIGNMENT, "moodle", roster=roster, out=out)
    assert out.read_bytes() == (
        b"Email address,ps9_gut\r\n"
        b"alice@uni.example,9.5\r\nbob@uni.example,4.8\r\ncarol@uni.example,8\r\n"
        b"dave@uni.example,0\r\nerin@uni.example,3.5\r\nfrank@uni.example,4\r\n")


def test_plain_csv_without_a_roster_uses_the_nbgrader_ids(config, tmp_path):
    out = tmp_path / "plain.csv"
    result = export_grades(config, ASSIGNMENT, "csv", out=out)
    assert out.read_bytes().decode("utf-8") == (
        "student_id,lms_id,status,days_late,raw_score,max_score,late_penalty,final_score\r\n"
        "alice,alice,on time,0,9.5,10,0,9.5\r\n"
        "bob,bob,late,1.04,6,10,1.2,4.8\r\n"
        "carol,carol,late,0.01,8,10,0,8\r\n"
        "dave,dave,no submission,,,10,,0\r\n"
        "erin,erin,late,10,7,10,3.5,3.5\r\n"
        "frank,frank,on time,0,4,10,0,4\r\n")
    assert "no roster: the nbgrader student ids are written as the LMS ids" in result.notes


def test_canvas_without_a_roster_uses_sis_login_ids(config, tmp_path):
    out = tmp_path / "canvas.csv"
    result = export_grades(config, ASSIGNMENT, "canvas", out=out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[2] == '"Adams, Alice",,,alice,,9.5'
    assert lines[5] == "Dave,,,dave,,0"
    assert any("SIS Login IDs" in n for n in result.notes)


def test_no_submission_can_be_an_empty_cell(gradebook, tmp_path):
    c = policy_config(gradebook, tmp_path, GradeExport={"no_submission": "empty"})
    out = tmp_path / "moodle.csv"
    export_grades(c, ASSIGNMENT, "moodle", out=out)
    assert "dave,\r\n" in out.read_bytes().decode("utf-8")


def test_rounding_is_half_up_to_two_decimals():
    from gutcourse.grading.export import _number

    assert [_number(x) for x in (0, 10.0, 8.5, 1 / 3, 2.675, 0.005, 1e-9)] == \
        ["0", "10", "8.5", "0.33", "2.68", "0.01", "0"]


# --- roster errors: every case listed, nothing written --------------------------------------


def assert_nothing_written(folder: Path, out: Path):
    assert not out.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_every_roster_problem_is_listed_at_once(config, tmp_path):
    roster = write_roster(tmp_path / "roster.csv", """student_id,lms_id
alice,1001
alice,1007
bob,1002
carol,1002
dave,1004
erin,
zoe,1009
""")
    out = tmp_path / "out" / "canvas.csv"
    with pytest.raises(RosterError) as caught:
        export_grades(config, ASSIGNMENT, "canvas", roster=roster, out=out)
    problems = caught.value.problems
    assert problems == [
        "line 7: empty lms_id",
        "duplicate student_id 'alice' on lines 2, 3",
        "duplicate lms_id '1002' on lines 4, 5",
        "'frank' is in the gradebook but not in the roster",
        "line 8: 'zoe' is in the roster but not in the gradebook",
    ]
    message = str(caught.value)
    assert message.startswith(f"roster {roster}: 5 problem(s), nothing was written:")
    assert all(p in message for p in problems)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_missing_columns_name_the_file_and_the_columns(config, tmp_path):
    roster = write_roster(tmp_path / "roster.csv", "Student ID,Canvas ID\nalice,1001\n")
    out = tmp_path / "canvas.csv"
    with pytest.raises(RosterError) as caught:
        export_grades(config, ASSIGNMENT, "canvas", roster=roster, out=out)
    assert caught.value.problems == [
        "missing column 'student_id' (the header row has: Student ID, Canvas ID)",
        "missing column 'lms_id' (the header row has: Student ID, Canvas ID)",
    ]
    assert str(roster) in str(caught.value)
    assert_nothing_written(tmp_path, out)


def test_empty_roster_and_missing_roster_file(config, tmp_path):
    empty = write_roster(tmp_path / "empty.csv", "")
    with pytest.raises(RosterError, match="the file is empty"):
        export_grades(config, ASSIGNMENT, "csv", roster=empty, out=tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="roster .*nope.csv does not exist"):
        export_grades(config, ASSIGNMENT, "csv", roster=tmp_path / "nope.csv", out=tmp_path / "x.csv")
    assert_nothing_written(tmp_path, tmp_path / "x.csv")


def test_canvas_ids_must_be_canvas_user_ids(config, tmp_path):
    roster = write_roster(tmp_path / "roster.csv",
                          ROSTER.replace("bob,1002", "bob,bbrown").replace("erin,1005", "erin,E5"))
    with pytest.raises(RosterError) as caught:
        export_grades(config, ASSIGNMENT, "canvas", roster=roster, out=tmp_path / "c.csv")
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 3", "line 6"]
    assert "is not a Canvas user id" in caught.value.problems[0]
    # The same roster is fine for Moodle, whose ids are user names or emails.
    export_grades(config, ASSIGNMENT, "moodle", roster=roster, out=tmp_path / "m.csv")


def test_roster_header_is_forgiving_about_case_spaces_and_excel_bom(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeff Student_ID , LMS_ID ,notes\r\nalice, 1001 ,keen\r\n\r\n".encode("utf-8"))
    assert read_roster(path)["alice"].lms_id == "1001"


# --- never overwrite ------------------------------------------------------------------------


def test_an_existing_file_is_kept_unless_forced(config, tmp_path):
    out = tmp_path / "grades.csv"
    out.write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="pass --force"):
        export_grades(config, ASSIGNMENT, "csv", out=out)
    assert out.read_text(encoding="utf-8") == "keep me"
    export_grades(config, ASSIGNMENT, "csv", out=out, force=True)
    assert out.read_text(encoding="utf-8").startswith("student_id,")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_default_output_is_in_the_course_folder(config, tmp_path):
    result = export_grades(config, ASSIGNMENT, "moodle")
    assert result.path == tmp_path / "exports" / f"{ASSIGNMENT}-moodle.csv"
    assert result.path.is_file()


def test_unknown_format_is_refused(config):
    with pytest.raises(ExportError, match="unknown format 'blackboard'"):
        export_grades(config, ASSIGNMENT, "blackboard")
    with pytest.raises(ExportError, match="unknown format"):
        render("blackboard", [], {}, "x")


# --- the command ----------------------------------------------------------------------------


def test_cli_reports_roster_errors_and_writes_nothing(gradebook, tmp_path, capsys):
    from gutcourse.cli import main

    roster = write_roster(tmp_path / "roster.csv", "student_id,lms_id\nalice,1\nzoe,2\n")
    out = tmp_path / "canvas.csv"
    code = main(["export", ASSIGNMENT, "--to", "canvas", "--roster", str(roster), "--out", str(out),
                 "--db", f"sqlite:///{gradebook}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"gutcourse export: roster {roster}: 6 problem(s), nothing was written:")
    for sid in ("bob", "carol", "dave", "erin", "frank"):
        assert f"'{sid}' is in the gradebook but not in the roster" in err
    assert "line 3: 'zoe' is in the roster but not in the gradebook" in err
    assert_nothing_written(tmp_path, out)


def test_cli_writes_the_file_and_says_what_it_did(gradebook, tmp_path, capsys):
    from gutcourse.cli import main

    out = tmp_path / "plain.csv"
    args = ["export", ASSIGNMENT, "--to", "csv", "--out", str(out), "--db", f"sqlite:///{gradebook}"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"wrote {out} (csv): 6 students" in captured.out
    assert "no roster" in captured.err
    assert main(args) == 1
    assert "exists: pass --force to replace it" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert os.path.getsize(out) > 0
