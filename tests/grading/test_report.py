"""Item analysis behind `gutcourse report`.

The statistics are checked on a hand-made class whose difficulty and
corrected item-total correlations are worked out by hand below.
`collect_class_results` is checked twice: on a gradebook filled through
nbgrader's API without running a kernel (fast), and on a real tiny course
released and autograded by nbgrader.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from gutcourse.grading._notebooks import grade_id, is_test
from gutcourse.grading.report import (ClassResults, collect_class_results, item_analysis, normalise_message,
                                      write_class_report, write_report)

REPO = Path(__file__).resolve().parents[2]
PS0 = "ps0_orientation"


def make_results(scores: dict[str, list[float]], max_points: dict[str, float], objectives: dict[str, str],
                 messages: list[tuple[str, str, str, str]] = (), objective_text: dict | None = None,
                 errors: dict | None = None) -> ClassResults:
    questions = list(max_points)
    frame = pd.DataFrame.from_dict(scores, orient="index", columns=questions, dtype=float)
    frame.index.name = "student"
    return ClassResults(
        assignment="ps9_handmade",
        scores=frame,
        max_points=pd.Series(max_points, dtype=float),
        messages=pd.DataFrame(list(messages), columns=["student", "question", "grade_id", "message"]),
        objectives=pd.Series(objectives, dtype=str),
        objective_text=objective_text if objective_text is not None else {
            "O1": "load a dataset", "O2": "convert units", "O3": "explain a skewed marker"},
        errors=errors or {},
    )


# Five students, three questions (q1_1 out of 2, q1_2 out of 1, q2_1 out of 3).
#            q1_1 q1_2 q2_1 | total
#   s1        2    1    3   |   6
#   s2        2    0    2   |   4
#   s3        1    1    1   |   3
#   s4        0    0    1   |   1
#   s5        1    1    0   |   2
HAND = {"s1": [2, 1, 3], "s2": [2, 0, 2], "s3": [1, 1, 1], "s4": [0, 0, 1], "s5": [1, 1, 0]}
HAND_MAX = {"q1_1": 2, "q1_2": 1, "q2_1": 3}
HAND_OBJ = {"q1_1": "O1", "q1_2": "O1", "q2_1": "O2"}


@pytest.fixture
def hand_class():
    return make_results(HAND, HAND_MAX, HAND_OBJ)


def test_difficulty_matches_hand_computation(hand_class):
    items = item_analysis(hand_class).items
    # Mean points / max points: q1_1 (2+2+1+0+1)/5 = 1.2 of 2; q1_2 3/5 = 0.6 of 1; q2_1 7/5 = 1.4 of 3.
    assert items.loc["q1_1", "mean_points"] == pytest.approx(1.2)
    assert items.loc["q1_1", "difficulty"] == pytest.approx(1.2 / 2)
    assert items.loc["q1_2", "difficulty"] == pytest.approx(0.6 / 1)
    assert items.loc["q2_1", "difficulty"] == pytest.approx(1.4 / 3)
    assert items["n"].tolist() == [5, 5, 5]
    assert items["max_points"].tolist() == [2, 1, 3]


def test_discrimination_is_the_corrected_item_total_correlation_by_hand(hand_class):
    items = item_analysis(hand_class).items
    # r = S_xy / sqrt(S_xx S_yy), x = item score, y = total minus the item, S = sums of products of deviations.
    # q1_1: x = 2,2,1,0,1 (mean 1.2); y = 4,2,2,1,1 (mean 2)
    #   dx = .8,.8,-.2,-1.2,-.2   dy = 2,0,0,-1,-1
    #   S_xy = 1.6 + 0 + 0 + 1.2 + 0.2 = 3.0; S_xx = .64+.64+.04+1.44+.04 = 2.8; S_yy = 4+0+0+1+1 = 6
    r_q1_1 = 3.0 / math.sqrt(2.8 * 6.0)
    # q1_2: x = 1,0,1,0,1 (mean .6); y = 5,4,2,1,1 (mean 2.6)
    #   dx = .4,-.6,.4,-.6,.4   dy = 2.4,1.4,-.6,-1.6,-1.6
    #   S_xy = .96 - .84 - .24 + .96 - .64 = 0.2; S_xx = 1.2; S_yy = 5.76+1.96+.36+2.56+2.56 = 13.2
    r_q1_2 = 0.2 / math.sqrt(1.2 * 13.2)
    # q2_1: x = 3,2,1,1,0 (mean 1.4); y = 3,2,2,0,2 (mean 1.8)
    #   dx = 1.6,.6,-.4,-.4,-1.4   dy = 1.2,.2,.2,-1.8,.2
    #   S_xy = 1.92 + .12 - .08 + .72 - .28 = 2.4; S_xx = 5.2; S_yy = 1.44+.04+.04+3.24+.04 = 4.8
    r_q2_1 = 2.4 / math.sqrt(5.2 * 4.8)
    assert items.loc["q1_1", "discrimination"] == pytest.approx(r_q1_1)  # 0.732
    assert items.loc["q1_2", "discrimination"] == pytest.approx(r_q1_2)  # 0.050
    assert items.loc["q2_1", "discrimination"] == pytest.approx(r_q2_1)  # 0.480
    assert items.loc["q1_2", "flags"] == "weak discrimination"
    assert items.loc["q1_1", "flags"] == "" and items.loc["q2_1", "flags"] == ""


def test_score_distribution_counts_students_per_score(hand_class):
    analysis = item_analysis(hand_class)
    assert analysis.distributions["q1_1"].to_dict() == {0.0: 1, 1.0: 2, 2.0: 2}
    assert analysis.distributions["q2_1"].to_dict() == {0.0: 1, 1.0: 2, 2.0: 1, 3.0: 1}
    assert analysis.items.loc["q1_1", "score_distribution"] == "0:1 1:2 2:2"


def test_zero_variance_item_gives_nan_with_a_note_and_leaves_the_others_alone(hand_class):
    scores = {s: [*v, 1] for s, v in HAND.items()}
    analysis = item_analysis(make_results(scores, {**HAND_MAX, "q3_1": 1}, {**HAND_OBJ, "q3_1": "O3"}))
    items = analysis.items
    assert math.isnan(items.loc["q3_1", "discrimination"])
    assert "same points" in items.loc["q3_1", "note"]
    assert items.loc["q3_1", "difficulty"] == 1.0
    assert items.loc["q3_1", "flags"] == "easy"
    # A constant added to every rest score leaves the other correlations unchanged.
    before = item_analysis(hand_class).items
    for q in HAND_MAX:
        assert items.loc[q, "discrimination"] == pytest.approx(before.loc[q, "discrimination"])


def test_rest_without_variance_too_few_students_hard_and_negative_items():
    only = item_analysis(make_results({"a": [1], "b": [0], "c": [1]}, {"q1_1": 1}, {"q1_1": "O1"})).items
    assert math.isnan(only.loc["q1_1", "discrimination"])
    assert "rest of the assignment" in only.loc["q1_1", "note"]

    two = item_analysis(make_results({"a": [1, 0], "b": [0, 1]}, {"q1_1": 1, "q1_2": 1},
                                     {"q1_1": "O1", "q1_2": "O1"})).items
    assert two["discrimination"].isna().all()
    assert two["note"].str.contains("at least 3 students").all()

    # q1_2 is won only by the student who lost everything else: hard and negatively discriminating.
    scores = {"a": [1, 0], "b": [1, 0], "c": [1, 0], "d": [0, 1], "e": [1, 0]}
    items = item_analysis(make_results(scores, {"q1_1": 1, "q1_2": 1}, {"q1_1": "O1", "q1_2": "O1"})).items
    assert items.loc["q1_2", "difficulty"] == pytest.approx(0.2)
    assert items.loc["q1_2", "discrimination"] == pytest.approx(-1.0)
    assert items.loc["q1_2", "flags"] == "hard; weak discrimination"
    assert items.loc["q1_2", "note"].startswith("negative")


def test_messages_are_normalised_counted_per_student_and_ranked():
    messages = [
        ("s1", "q1_1", "q1_1_test_a", "AssertionError: `shannon` looks like it uses log base 2"),
        ("s1", "q1_1", "q1_1_test_b", "AssertionError: `shannon` looks like it uses log base 2"),
        ("s2", "q1_1", "q1_1_test_a", "AssertionError:   `shannon` looks like\nit uses log base 2"),
        ("s3", "q1_1", "q1_1_test_b", "AssertionError: `shannon` looks like it uses log base 2"),
        ("s2", "q1_1", "q1_1_test_a", "NameError: name 'shannon' is not defined"),
        ("s4", "q1_1", "q1_1_test_a", "NameError: name 'shannon' is not defined"),
        ("s4", "q1_1", "q1_1_test_b", "AssertionError: the result should be a float"),
        ("s5", "q1_1", "q1_1_test_b", "AssertionError: a fourth message"),
        ("s5", "q1_2", "q1_2_test", "AssertionError: "),  # a bare `assert` (nbgrader: ename, empty evalue)
        ("s4", "q1_2", "q1_2_test", "AssertionError"),
    ]
    scores = {s: [0, 0, 0] for s in ("s1", "s2", "s3", "s4", "s5")}
    analysis = item_analysis(make_results(scores, HAND_MAX, HAND_OBJ, messages))
    top = analysis.top_messages("q1_1")
    assert top["message"].tolist() == ["`shannon` looks like it uses log base 2",
                                       "NameError: name 'shannon' is not defined",
                                       "a fourth message"]
    assert top["count"].tolist() == [3, 2, 1]  # s1 failed two cells with it: one student
    assert top["rank"].tolist() == [1, 2, 3]
    assert top.loc[0, "grade_ids"] == "q1_1_test_a, q1_1_test_b"
    assert len(analysis.messages[analysis.messages["question"] == "q1_1"]) == 4
    bare = analysis.top_messages("q1_2")
    assert bare[["message", "count"]].values.tolist() == [["(failed without a message)", 2]]
    assert analysis.top_messages("q2_1").empty
    assert normalise_message("KeyError: 'crp'") == "KeyError: 'crp'"


def test_objective_summary(hand_class):
    objectives = item_analysis(hand_class).objectives
    assert objectives.index.tolist() == ["O1", "O2", "O3"]
    # O1 = q1_1 + q1_2 (3 points): per student 3, 2, 2, 0, 2 -> mean 9/5 = 1.8.
    assert objectives.loc["O1", "questions"] == "q1_1, q1_2"
    assert objectives.loc["O1", "points"] == 3
    assert objectives.loc["O1", "mean_points"] == pytest.approx(9 / 5)
    assert objectives.loc["O1", "mean_fraction"] == pytest.approx(9 / 5 / 3)
    assert objectives.loc["O2", "mean_fraction"] == pytest.approx(7 / 5 / 3)
    assert objectives.loc["O2", "text"] == "convert units"
    assert objectives.loc["O3", "n_questions"] == 0
    assert math.isnan(objectives.loc["O3", "mean_fraction"])


def test_item_analysis_does_not_change_its_input(hand_class):
    before = hand_class.scores.copy()
    item_analysis(hand_class)
    pd.testing.assert_frame_equal(hand_class.scores, before)


def _check_page(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)">', text)
    assert len(images) == 2 and all(len(alt) > 40 for alt in images)
    assert "<script" not in text and "<link" not in text and "http" not in text
    levels = [int(h) for h in re.findall(r"<h([1-6])[ >]", text)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    return text


def test_write_report_files_html_and_csv_round_trip(hand_class, tmp_path):
    scores = {s: [*v, 1] for s, v in HAND.items()}
    messages = [("s4", "q1_1", "q1_1_test_a", "AssertionError: <b>not</b> the expected value, \"quoted\"")]
    results = make_results(scores, {**HAND_MAX, "q3_1": 1}, {**HAND_OBJ, "q3_1": "O3"}, messages,
                           errors={"s9": "Traceback ...\nnbformat.reader.NotJSONError: broken notebook"})
    analysis = item_analysis(results)
    page = write_report(analysis, tmp_path / "out", title="Item analysis: handmade")
    assert page == tmp_path / "out" / "report.html"
    for name in ("items.csv", "objectives.csv", "messages.csv",
                 "difficulty_discrimination.png", "score_distributions.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert (tmp_path / "out" / "score_distributions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = _check_page(page)
    assert "&lt;b&gt;not&lt;/b&gt;" in text and "<b>not</b>" not in text
    assert "s9" in text and "NotJSONError: broken notebook" in text
    assert "Ebel" in text

    def read(name, **kw):
        return pd.read_csv(tmp_path / "out" / name, keep_default_na=False, na_values=["NaN"], **kw)

    items = read("items.csv", index_col="question")
    pd.testing.assert_frame_equal(items, analysis.items, check_dtype=False)
    objectives = read("objectives.csv", index_col="objective")
    pd.testing.assert_frame_equal(objectives, analysis.objectives, check_dtype=False)
    pd.testing.assert_frame_equal(read("messages.csv"), analysis.messages, check_dtype=False)


def test_write_report_with_no_graded_submission(tmp_path):
    results = make_results({}, HAND_MAX, HAND_OBJ, errors={"s1": "not graded"})
    analysis = item_analysis(results)
    assert analysis.n_students == 0 and analysis.items["difficulty"].isna().all()
    text = _check_page(write_report(analysis, tmp_path, title="empty"))
    assert "No graded submissions yet" in text


# --- collect_class_results on a gradebook ---------------------------------------------------

def _hidden_test_lines(source_nb) -> list[str]:
    """Lines of code inside the hidden-test regions of the source notebook (long enough to be telling)."""
    lines = []
    for cell in source_nb.cells:
        if is_test(cell):
            for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
                lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 12]
    assert lines
    return lines


def _course_with_ps0(tmp_path) -> Path:
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(REPO / "coursework" / "source" / PS0, course / "source" / PS0,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(REPO / "coursework" / "source" / "header.ipynb", course / "source" / "header.ipynb")
    return course


# nbgrader's own add_submission triggers these SQLAlchemy warnings; they are not ours to fix.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_collect_from_a_gradebook_filled_without_kernels(tmp_path):
    from nbgrader.api import Gradebook

    from gutcourse.grading import load_config

    course = _course_with_ps0(tmp_path)
    config = load_config(course_root=course)
    source = nbformat.read(str(course / "source" / PS0 / f"{PS0}.ipynb"), as_version=4)
    tests = {grade_id(c): float(c.metadata["nbgrader"]["points"]) for c in source.cells if is_test(c)}
    # ana: everything; ben: fails q2_1_test_by_hand; cy: never autograded (broken notebook).
    lost = {"ana": {}, "ben": {"q2_1_test_by_hand": "AssertionError: should the number get bigger or smaller?"}}
    with Gradebook(config.CourseDirectory.db_url) as gb:
        gb.add_assignment(PS0)
        gb.add_notebook(PS0, PS0)
        for gid, points in tests.items():
            gb.add_grade_cell(gid, PS0, PS0, max_score=points, cell_type="code")
        gb.add_grade_cell("q3_2_written_mean_median", PS0, PS0, max_score=2, cell_type="markdown")
        for student in ("ana", "ben", "cy"):
            gb.add_student(student)
            gb.add_submission(PS0, student)
        for student, failures in lost.items():
            for gid, points in tests.items():
                gb.find_grade(gid, PS0, PS0, student).auto_score = 0.0 if gid in failures else points
            gb.db.commit()
            executed = nbformat.from_dict(source)
            for cell in executed.cells:
                if grade_id(cell) in failures:
                    ename, evalue = failures[grade_id(cell)].split(": ", 1)
                    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
            folder = course / "autograded" / student / PS0
            folder.mkdir(parents=True)
            nbformat.write(executed, str(folder / f"{PS0}.ipynb"))
    (course / "submitted" / "dee" / PS0).mkdir(parents=True)  # submitted, never reached the gradebook

    results = collect_class_results(config, PS0)
    assert results.scores.index.tolist() == ["ana", "ben"]
    assert results.scores.columns.tolist() == ["q1_1", "q2_1", "q2_2", "q3_1"]
    assert results.max_points.to_dict() == {"q1_1": 1, "q2_1": 2, "q2_2": 2, "q3_1": 2}
    assert results.scores.loc["ana"].tolist() == [1, 2, 2, 2]
    assert results.scores.loc["ben"].tolist() == [1, 1, 2, 2]
    assert results.objectives.to_dict() == {"q1_1": "O1", "q2_1": "O2", "q2_2": "O2", "q3_1": "O3"}
    assert sorted(results.objective_text) == ["O1", "O2", "O3", "O4"]
    assert results.objective_text["O2"] == "convert a blood marker between the units labs report it in"
    assert set(results.errors) == {"cy", "dee"}
    assert "no autograder score" in results.errors["cy"] and results.errors["dee"] == "not graded"
    assert results.messages.to_dict("records") == [
        {"student": "ben", "question": "q2_1", "grade_id": "q2_1_test_by_hand",
         "message": "AssertionError: should the number get bigger or smaller?"}]

    page = write_class_report(config, PS0)
    assert page == course / "reports" / PS0 / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "should the number get bigger or smaller?" in text
    for line in _hidden_test_lines(source):
        assert line not in text, line


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_collect_from_a_real_autograded_class(tmp_path):
    """Release ps0, autograde the solution, one misconception and a broken notebook (two kernels)."""
    from gutcourse.grading import autograde, load_bank, load_config, release, submit
    from gutcourse.grading._notebooks import fill_answers

    course = _course_with_ps0(tmp_path)
    config = load_config(course_root=course)
    release(config, [PS0])
    released = nbformat.read(str(course / "release" / PS0 / f"{PS0}.ipynb"), as_version=4)
    source = nbformat.read(str(course / "source" / PS0 / f"{PS0}.ipynb"), as_version=4)
    multiply = next(m for m in load_bank(PS0) if m.id == "convert_multiply")
    submit(config, PS0, "alice", fill_answers(released, source))
    submit(config, PS0, "carol", fill_answers(released, source, multiply.replace))
    broken = submit(config, PS0, "dave", released)
    broken.write_text("{ this is not a notebook", encoding="utf-8")
    autograde(config, PS0, ["alice", "carol", "dave"])

    results = collect_class_results(config, PS0)
    assert results.scores.loc["alice"].tolist() == results.max_points.tolist()
    lost = results.max_points - results.scores.loc["carol"]
    assert lost[lost > 0].to_dict() == {"q2_1": multiply.points_lost}
    assert list(results.errors) == ["dave"]
    assert set(results.messages["grade_id"]) == set(multiply.expect)

    analysis = item_analysis(results)
    top = analysis.top_messages("q2_1")
    assert any(multiply.expect["q2_1_test_by_hand"] in m and not m.startswith("AssertionError")
               for m in top["message"])
    assert np.isnan(analysis.items.loc["q1_1", "discrimination"])  # two students only

    page = write_class_report(config, PS0, tmp_path / "report")
    text = _check_page(page)
    for line in _hidden_test_lines(source):
        assert line not in text, line


def test_markup_from_students_and_messages_is_shown_as_text(tmp_path):
    """The page is rendered by an autoescaping template: markup in any value appears as text (issue 12)."""
    scores = {s: [*v, 1] for s, v in HAND.items()}
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    messages = [("s4", "q1_1", "q1_1_test_a", f"AssertionError: {hostile} & \"quoted\"")]
    results = make_results(scores, {**HAND_MAX, "q3_1": 1}, {**HAND_OBJ, "q3_1": "O3"}, messages,
                           errors={f"s9{hostile}": f"Traceback ...\nNotJSONError: {hostile}"})
    page = write_report(item_analysis(results), tmp_path / "out", title=f"Item analysis {hostile}")
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<img src=x" not in text
    # the title twice, the message, the student and the reason
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 5
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(2)&gt;" in text
