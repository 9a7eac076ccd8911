"""Feedback without hidden tests.

nbgrader's feedback is the autograded notebook rendered as HTML. Its test cells
hold the hidden tests (autograde restores them), and an error's traceback
quotes the failing line of test code. :class:`HideHiddenTests` removes both:
the hidden regions from every test cell's source, and every traceback from its
outputs, keeping the one line a student needs (``AssertionError: <message>``).
``nbgrader_config.py`` puts it in ``GenerateFeedback.preprocessors``.

A submission's outputs and markdown are the student's own HTML, and the feedback
page is opened by instructors too: :class:`SanitizeFeedbackHTML` (listed after it)
makes them inert before the page is rendered.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

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


# Why not nbconvert's own `HTMLExporter.sanitize_html`: nbgrader's feedback template renders
# markdown cells itself without it, and its allowlist (no p, h1-h6, img, th, thead, tbody) shows a
# DataFrame's table as escaped tags.  So every cell is cleaned here, whatever the template does:
# - text/html outputs, markdown outputs (turned into HTML) and markdown cells go through bleach with
#   the allowlist below: no script, no event handler, no javascript: link, no inline SVG, CSS only
#   in style attributes of allowed properties (<style> blocks, pandas' too, are dropped);
# - only mimetypes the template shows as text or image stay; application/javascript, widgets and
#   anything else are dropped;
# - image/svg+xml is kept: the template embeds it as <img src="data:...">, where scripts never run.
_TAGS = frozenset("""a abbr b blockquote br caption code col colgroup dd del details div dl dt em
    h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre q s samp small span strong sub summary sup
    table tbody td tfoot th thead tr u ul var""".split())
_ATTRIBUTES = {"*": ["class", "id", "title", "style", "align"], "a": ["href", "name"],
               "img": ["src", "alt", "width", "height"], "ol": ["start"], "table": ["border"],
               "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"]}
_SHOWN = frozenset({"text/plain", "text/html", "text/latex", "image/png", "image/jpeg", "image/svg+xml"})
# Removed with their content, so neither code nor CSS shows up as text (bleach alone keeps it).
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b", re.IGNORECASE)


def _without_scripts_and_styles(html: str) -> str:
    """``html`` without <script> and <style> elements and what they hold; an unclosed one takes the rest.

    A scan, not one regular expression: ``<script>.*?</script>`` tried from each of many unclosed
    openings takes time growing with the square of the text (35 s for 256 KB of "<script>").
    """
    lower = html.lower()
    kept, at = [], 0
    while (found := _SCRIPT_OR_STYLE.search(html, at)) is not None:
        kept.append(html[at:found.start()])
        close = lower.find(f"</{found.group(1).lower()}", found.end())
        if close < 0:
            return "".join(kept)
        end = lower.find(">", close)
        at = len(html) if end < 0 else end + 1
    kept.append(html[at:])
    return "".join(kept)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name not in _ATTRIBUTES.get(tag, ()) and name not in _ATTRIBUTES["*"]:
        return False
    if not value.strip().lower().startswith("data:"):
        return True
    # data: only for inline pictures (a markdown answer's pasted image), never for links.
    return tag == "img" and name == "src" and re.match(r"\s*data:image/(png|jpeg|gif);", value, re.I) is not None


#: Most characters, and most tags, of one piece of a submission's HTML or markdown that is cleaned
#: and shown as such; more is shown as text. bleach's parser takes time growing with the square of
#: nested tags (30 s for 200 KB of "<b>"), and a DataFrame's table (pandas shows 60 rows) is a few
#: tens of KB.
_MAX_HTML, _MAX_TAGS = 100_000, 4_000


def _too_big(text: str) -> bool:
    return len(text) > _MAX_HTML or text.count("<") > _MAX_TAGS


def _as_text(text: str) -> str:
    import html

    return "<pre>" + html.escape(text[:_MAX_HTML]) + ("\n…" if len(text) > _MAX_HTML else "") + "</pre>"


def clean_html(html: str) -> str:
    """``html`` without anything that runs: script, event handlers, javascript: URLs, inline SVG, <style>."""
    if _too_big(html):
        return _as_text(html)
    from bleach.css_sanitizer import CSSSanitizer
    from bleach.sanitizer import Cleaner

    # A Cleaner is not thread-safe, and making one takes a tenth of a millisecond.
    cleaner = Cleaner(tags=_TAGS, attributes=_allowed_attribute, protocols={"http", "https", "mailto", "data"},
                      strip=True, strip_comments=True, css_sanitizer=CSSSanitizer())
    return cleaner.clean(_without_scripts_and_styles(html))


def _markdown_to_html(source: str, attachments=None) -> str:
    """Markdown as the feedback template renders it (math and pasted images included), cleaned."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    if _too_big(source):
        return _as_text(source)
    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return clean_html(MarkdownWithMath(renderer=renderer).render(source))


def _safe_output_metadata(metadata) -> dict:
    """Only a picture's width and height, and only as plain numbers.

    The template writes them into an <img> tag without quotes: ``"1 onerror=..."`` as a width
    added an event handler (red team round 9). Nothing else of an output's metadata is shown.
    """
    kept = {}
    for mime, value in (metadata.items() if isinstance(metadata, dict) else ()):
        if isinstance(value, dict):
            size = {k: v for k, v in value.items() if k in ("width", "height") and _plain_number(v)}
            if size:
                kept[mime] = size
    return kept


def _plain_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value == value and abs(value) < 1e6
    return isinstance(value, str) and re.fullmatch(r"\d{1,6}(\.\d{1,3})?", value) is not None


class SanitizeFeedbackHTML(NbGraderPreprocessor):
    """Make every cell's HTML inert before feedback is rendered (see the comment above).

    One notebook's HTML is cleaned up to ten times :data:`_MAX_TAGS` tags in all; what comes
    after that is shown as text, so that no submission keeps the feedback run for long.
    """

    _tags_left = 10 * _MAX_TAGS  # what is left of the notebook's budget (reset for each notebook)

    def preprocess(self, nb, resources):
        self._tags_left = 10 * _MAX_TAGS
        return super().preprocess(nb, resources)

    def _within_budget(self, text: str) -> bool:
        tags = text.count("<")
        if tags > self._tags_left:
            return False
        self._tags_left -= tags
        return True

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            html = (_markdown_to_html(cell.source, cell.get("attachments")) if self._within_budget(cell.source)
                    else _as_text(cell.source))
            # The template renders this source as markdown again: one line that starts with <div>
            # is a CommonMark HTML block, passed on verbatim (newlines kept as &#10;).
            cell.source = "<div>" + html.replace("\r", "").replace("\n", "&#10;") + "</div>"
            cell.pop("attachments", None)
        elif cell.cell_type == "raw":
            cell.source = clean_html(cell.source) if self._within_budget(cell.source) else _as_text(cell.source)
        outputs = []
        for out in cell.get("outputs", []):
            if "metadata" in out:
                out["metadata"] = _safe_output_metadata(out["metadata"])
            data = out.get("data")
            if data is not None:
                if "text/markdown" in data and "text/html" not in data:
                    markdown = data["text/markdown"]
                    data["text/html"] = _markdown_to_html(markdown) if self._within_budget(markdown) \
                        else _as_text(markdown)
                for mime in [m for m in data if m not in _SHOWN]:
                    del data[mime]
                if "text/html" in data:
                    html = data["text/html"]
                    if not _too_big(html) and self._within_budget(html):
                        data["text/html"] = clean_html(html)
                    elif "text/plain" in data:
                        del data["text/html"]  # its text is shown instead
                    else:
                        data["text/html"] = _as_text(html)
                if not data:
                    continue
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
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
