"""Feedback HTML runs nothing a submission put in it (red team round 8, issue 4).

One ps0_orientation submission shows script every way a notebook can: an HTML
output with <script>, an onerror handler and a javascript: link, a JavaScript
output, an SVG with a script, inline SVG in HTML, markdown output, and a written
(markdown) answer holding the same. It also shows what feedback must keep: a
DataFrame's table, a PNG, printed text and an error. Each injected piece carries
a marker of its own, so the page's own scripts (MathJax, require.js) are not
mistaken for the student's.
"""

import base64
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from gutcourse.grading import generate_feedback, load_config, release
from gutcourse.grading._notebooks import fill_answers, grade_id
from gutcourse.grading.autograde import autograde, submit
from gutcourse.grading.feedback import SanitizeFeedbackHTML

from .conftest import make_course

A = "ps0_orientation"
STUDENT = "mallory"
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
MARKERS = ["XSS_ONERROR", "XSS_SCRIPT", "XSS_HREF", "XSS_JS", "XSS_SVG_SCRIPT", "XSS_SVG_ONLOAD",
           "XSS_INLINE_SVG", "XSS_MD_OUT", "XSS_MD_OUT_HREF", "XSS_MD_SCRIPT", "XSS_MD_ONERROR",
           "XSS_MD_HREF", "XSS_STYLE", "XSS_META"]

HTML_OUTPUT = ('<img src=x onerror="window.XSS_ONERROR=1"><script>window.XSS_SCRIPT=1</script>'
               '<a href="javascript:window.XSS_HREF=1">link</a><style>body {content: "XSS_STYLE"}</style>'
               '<svg><script>window.XSS_INLINE_SVG=1</script></svg>')
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"><script>window.XSS_SVG_SCRIPT=1</script>'
       '<rect width="5" height="5" onload="window.XSS_SVG_ONLOAD=1"/></svg>')
CELLS = [
    "from IPython.display import HTML, SVG, Javascript, Markdown, display\n"
    f"display(HTML({HTML_OUTPUT!r}))",
    'display(Javascript("window.XSS_JS=1"))',
    f"display(SVG({SVG!r}))",
    'display(Markdown("*md_kept* <script>window.XSS_MD_OUT=1</script> [md](javascript:window.XSS_MD_OUT_HREF=1)"))',
    'import pandas as pd\npd.DataFrame({"kept_column": [11, 22]})',
    f'display({{"image/png": "{PNG}"}}, raw=True)',
    # Red team round 9: the template writes a picture's width unquoted.
    f'display({{"image/png": "{PNG}"}}, raw=True, metadata={{"image/png": {{"width": "1 onerror=window.XSS_META=1"}}}})',
    'print("kept_print <b>not bold</b>")',
    'raise ValueError("kept_error")',
]
WRITTEN = ("The mean is larger than the median: **kept_bold**. <script>window.XSS_MD_SCRIPT=1</script>"
           '<img src=x onerror="window.XSS_MD_ONERROR=1"> [see](javascript:window.XSS_MD_HREF=1)\n\n'
           "| kept_md_table | b |\n|---|---|\n| 1 | 2 |\n\n$x^2 < y$")


class _Page(HTMLParser):
    """A page's tags (tag, attributes), the content of its script and style elements, and its text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self.styles, self.text, self._raw = [], [], [], [], None
        self.feed(text)
        self.text = "".join(self.text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._raw = []

    def handle_data(self, data):
        (self.text if self._raw is None else self._raw).append(data)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._raw is not None:
            (self.scripts if tag == "script" else self.styles).append("".join(self._raw))
            self._raw = None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The feedback page of one graded submission full of script."""
    course = make_course(tmp_path_factory.mktemp("feedback_html") / "course")
    config = load_config(course_root=course)
    release(config, [A])
    rel = nbformat.read(str(course / "release" / A / f"{A}.ipynb"), as_version=4)
    src = nbformat.read(str(course / "source" / A / f"{A}.ipynb"), as_version=4)
    nb = fill_answers(rel, src, {"q3_2_written_mean_median": WRITTEN})
    at = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "q1_1_load_markers")
    nb.cells[at].source += "\n" + CELLS[0]  # in the answer cell itself
    nb.cells[at + 1:at + 1] = [new_code_cell(code) for code in CELLS[1:]]
    submit(config, A, STUDENT, nb)
    assert autograde(config, A, [STUDENT])[STUDENT].error is None
    assert generate_feedback(config, A, [STUDENT]) == {STUDENT: None}
    return (course / "feedback" / STUDENT / A / f"{A}.html").read_text()


def test_feedback_runs_no_script_from_the_submission(page):
    parsed = _Page(page)
    for script in parsed.scripts:
        assert not [m for m in MARKERS if m in script], script[:300]
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            value = value or ""
            assert not (name.startswith("on") and any(m in value for m in MARKERS)), (tag, name, value)
            assert not value.strip().lower().startswith("javascript:"), (tag, name, value)
    # No inline SVG, <style> block or JavaScript output of the student's is left at all.
    assert "svg" not in [tag for tag, _ in parsed.tags]
    assert not [style for style in parsed.styles if "XSS_STYLE" in style]
    assert not [a for _, a in parsed.tags if "output_javascript" in (a.get("class") or "")]
    # Elsewhere the markers show only as text (the highlighted input code): in no attribute at all.
    assert not [(tag, attrs) for tag, attrs in parsed.tags
                if any(m in (v or "") for v in attrs.values() for m in MARKERS)]


def test_feedback_keeps_tables_images_text_and_errors(page):
    parsed = _Page(page)
    text = parsed.text
    assert "<th>kept_column</th>" in page and "<td>22</td>" in page
    assert any(tag == "table" and "dataframe" in attrs.get("class", "") for tag, attrs in parsed.tags)
    assert f'src="data:image/png;base64,{PNG}"' in page
    assert "kept_print <b>not bold</b>" in text and "kept_print &lt;b&gt;not bold&lt;/b&gt;" in page
    assert "ValueError: kept_error" in text
    # The SVG stays a picture: an <img> of the student's SVG, where scripts never run.
    svgs = [attrs["src"] for tag, attrs in parsed.tags
            if tag == "img" and attrs.get("src", "").startswith("data:image/svg+xml;base64,")]
    assert len(svgs) == 1 and b"<rect" in base64.b64decode(svgs[0].split(",", 1)[1])
    # The written answer is still markdown: bold, a table and math.
    assert "<strong>kept_bold</strong>" in page and "<th>kept_md_table</th>" in page
    assert "$x^2 &lt; y$" in page
    assert "<em>md_kept</em>" in page


def test_sanitizer_alone():
    """The preprocessor on a notebook, no grading: each output kind as it leaves it."""
    nb = nbformat.v4.new_notebook()
    cell = new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {"text/html": HTML_OUTPUT, "text/plain": "<HTML>"}),
        nbformat.v4.new_output("display_data", {"application/javascript": "window.XSS_JS=1"}),
        nbformat.v4.new_output("display_data", {"application/javascript": "window.XSS_JS=1",
                                                "text/plain": "<Javascript>"}),
    ]
    nb.cells = [cell, nbformat.v4.new_markdown_cell(WRITTEN)]
    nb, _ = SanitizeFeedbackHTML().preprocess(nb, {})
    outputs = nb.cells[0].outputs
    assert len(outputs) == 2 and dict(outputs[1].data) == {"text/plain": "<Javascript>"}
    shown = outputs[0].data["text/html"] + nb.cells[1].source
    for marker in ("XSS_ONERROR", "XSS_SCRIPT", "XSS_HREF", "XSS_INLINE_SVG", "XSS_STYLE",
                   "XSS_MD_SCRIPT", "XSS_MD_ONERROR", "XSS_MD_HREF"):
        assert marker not in shown, marker
    assert "<script" not in shown and "onerror" not in shown and "javascript:" not in shown


def test_html_too_big_or_too_nested_to_clean_quickly_is_shown_as_text():
    """bleach takes time growing with the square of nested tags (30 s for 200 KB of "<b>"): past the
    bounds a piece is shown as text, and one notebook's pieces share a budget."""
    import time

    import nbformat

    from gutcourse.grading.feedback import _MAX_TAGS, SanitizeFeedbackHTML

    nested = "<b>" * 60_000 + "<script>window.X=1</script>"
    many = "<i>x</i>" * (_MAX_TAGS // 2 - 10)  # within the bound for one piece
    outputs = [nbformat.v4.new_output("display_data", {"text/html": nested}),
               nbformat.v4.new_output("display_data", {"text/html": nested, "text/plain": "plain"})]
    outputs += [nbformat.v4.new_output("display_data", {"text/html": many}) for _ in range(30)]
    cell = nbformat.v4.new_code_cell("x", outputs=outputs)
    markdown = nbformat.v4.new_markdown_cell("<b>" * 60_000)
    nb = nbformat.v4.new_notebook(cells=[cell, markdown])
    started = time.process_time()
    nb, _ = SanitizeFeedbackHTML(enabled=True).preprocess(nb, {})
    assert time.process_time() - started < 60  # unbounded, this is hours of CPU
    shown = [o.data for o in nb.cells[0].outputs]
    assert shown[0]["text/html"].startswith("<pre>&lt;b&gt;") and "<script" not in shown[0]["text/html"]
    assert shown[1] == {"text/plain": "plain"}
    cleaned = [d["text/html"] for d in shown[2:]]
    assert cleaned[0] == many and cleaned[-1].startswith("<pre>"), "the notebook's budget ran out on the way"
    assert nb.cells[1].source.startswith("<div><pre>&lt;b&gt;")
